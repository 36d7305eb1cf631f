using System.Text.Json;
using System.Text.Json.Nodes;
using Matrix.Homeserver.Accounts;
using Matrix.Homeserver.Http;
using Matrix.Homeserver.Sync;

namespace Matrix.Homeserver.E2ee;

/// <summary>
/// Spec: end-to-end encryption key management (<c>keys/upload</c>, <c>keys/query</c>, <c>keys/claim</c>,
/// <c>keys/changes</c>) and cross-signing (<c>keys/device_signing/upload</c>, <c>keys/signatures/upload</c>).
/// </summary>
public sealed class KeysEndpoints(
    Authenticator authenticator, JsonBody json, KeyService keys, CrossSigningService crossSigning, DeviceListService deviceLists) : IEndpoints
{
    public void Map(IEndpointRouteBuilder app)
    {
        app.MapV3("POST", "keys/upload", UploadAsync);
        app.MapV3("POST", "keys/query", QueryAsync);
        app.MapV3("POST", "keys/claim", ClaimAsync);
        app.MapV3("GET", "keys/changes", ChangesAsync);
        app.MapV3("POST", "keys/device_signing/upload", UploadCrossSigningKeysAsync);
        // The unstable paths of cross-signing (MSC1756): Element Web 1.11.88 still probes them, older clients use them.
        app.MapMethods($"{Routes.ClientPrefix}/unstable/keys/device_signing/upload", ["POST"], UploadCrossSigningKeysAsync);
        app.MapMethods($"{Routes.ClientPrefix}/unstable/keys/signatures/upload", ["POST"], UploadSignaturesAsync);
        app.MapV3("POST", "keys/signatures/upload", UploadSignaturesAsync);
    }

    private async Task UploadAsync(HttpContext context)
    {
        var requester = await authenticator.AuthenticateAsync(context);
        await context.WriteJsonAsync(await keys.UploadAsync(requester, await json.ReadObjectAsync(context), context.RequestAborted));
    }

    private async Task QueryAsync(HttpContext context)
    {
        var requester = await authenticator.AuthenticateAsync(context);
        var body = await json.ReadObjectAsync(context);
        var wanted = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        foreach (var user in (body.OptionalObject("device_keys") ?? throw MatrixException.MissingParam("device_keys")).EnumerateObject())
            wanted[JsonFields.WithoutNul(user.Name, "device_keys")] = user.Value.ValueKind == JsonValueKind.Array
                && user.Value.EnumerateArray().All(d => d.ValueKind == JsonValueKind.String)
                ? user.Value.EnumerateArray().Select(d => JsonFields.WithoutNul(d.GetString()!, "device_keys")).ToList()
                : throw MatrixException.BadJson($"device_keys.{user.Name} must be an array of device IDs.");
        await context.WriteJsonAsync(await keys.QueryAsync(requester.UserId.Value, wanted, Timeout(body), context.RequestAborted));
    }

    private async Task ClaimAsync(HttpContext context)
    {
        await authenticator.AuthenticateAsync(context);
        var body = await json.ReadObjectAsync(context);
        var wanted = new Dictionary<string, Dictionary<string, string>>(StringComparer.Ordinal);
        foreach (var user in (body.OptionalObject("one_time_keys") ?? throw MatrixException.MissingParam("one_time_keys")).EnumerateObject())
        {
            if (user.Value.ValueKind != JsonValueKind.Object)
                throw MatrixException.BadJson($"one_time_keys.{user.Name} must map device IDs to algorithms.");
            wanted[JsonFields.WithoutNul(user.Name, "one_time_keys")] = user.Value.EnumerateObject().ToDictionary(
                d => JsonFields.WithoutNul(d.Name, "one_time_keys"),
                d => d.Value.ValueKind == JsonValueKind.String ? JsonFields.WithoutNul(d.Value.GetString()!, "one_time_keys")
                    : throw MatrixException.BadJson($"one_time_keys.{user.Name}.{d.Name} must be an algorithm name."));
        }
        await context.WriteJsonAsync(await keys.ClaimAsync(wanted, Timeout(body), context.RequestAborted));
    }

    private static int Timeout(JsonElement body) =>
        (int)Math.Clamp(body.OptionalInteger("timeout") ?? KeyService.DefaultRemoteTimeoutMs, 0, 60_000);

    private async Task ChangesAsync(HttpContext context)
    {
        var requester = await authenticator.AuthenticateAsync(context);
        var from = SyncToken.Parse(context.Query("from") is { Length: > 0 } f ? f : throw MatrixException.MissingParam("from"), "from");
        var to = SyncToken.Parse(context.Query("to") is { Length: > 0 } t ? t : throw MatrixException.MissingParam("to"), "to");
        var (changed, left) = await deviceLists.ChangesForSyncAsync(requester.UserId.Value, from.DeviceLists, to.DeviceLists, from.Events, to.Events,
            context.RequestAborted);
        await context.WriteJsonAsync(new JsonObject
        {
            ["changed"] = new JsonArray(changed.Select(u => (JsonNode)u).ToArray()),
            ["left"] = new JsonArray(left.Select(u => (JsonNode)u).ToArray()),
        });
    }

    private async Task UploadCrossSigningKeysAsync(HttpContext context)
    {
        var requester = await authenticator.AuthenticateAsync(context);
        await crossSigning.UploadKeysAsync(context, requester, await json.ReadObjectAsync(context), isAppService: requester.AppService is not null);
        await context.WriteJsonAsync(new JsonObject());
    }

    private async Task UploadSignaturesAsync(HttpContext context)
    {
        var requester = await authenticator.AuthenticateAsync(context);
        await context.WriteJsonAsync(await crossSigning.UploadSignaturesAsync(requester, await json.ReadObjectAsync(context), context.RequestAborted));
    }
}
