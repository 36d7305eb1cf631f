using System.Text.Json.Nodes;
using Matrix.Federation.Identifiers;
using Matrix.Federation.Json;
using Matrix.Homeserver.Accounts;
using Matrix.Homeserver.Config;
using Matrix.Homeserver.E2ee;
using Matrix.Homeserver.Http;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.ServerServer;

/// <summary>
/// Spec (server-server): <c>user/devices</c>, <c>user/keys/query</c> and <c>user/keys/claim</c>, the end-to-end keys of
/// this server's users for other servers. Signatures by other users' user-signing keys are never handed out.
/// </summary>
public sealed class FederationKeyEndpoints(
    FederationRequestAuth auth, Database db, DeviceStore devices, DeviceListStore deviceLists, LocalKeyReader localKeys, KeyService keys,
    HomeserverConfig config) : IEndpoints
{
    public void Map(IEndpointRouteBuilder app)
    {
        var prefix = FederationQueryEndpoints.FederationPrefix;
        app.MapGet($"{prefix}/v1/user/devices/{{userId}}", DevicesAsync);
        app.MapPost($"{prefix}/v1/user/keys/query", QueryAsync);
        app.MapPost($"{prefix}/v1/user/keys/claim", ClaimAsync);
    }

    private bool IsLocal(string userId) => UserId.TryParse(userId, out var user) && user.Server.Value == config.ServerName;

    private async Task DevicesAsync(HttpContext context)
    {
        await auth.AuthenticateAsync(context);
        var userId = context.Route("userId");
        if (!IsLocal(userId))
            throw MatrixException.InvalidParam("The user is not on this server.");
        var response = await db.ReadAsync(async s =>
        {
            var published = await localKeys.ReadAsync(s, new Dictionary<string, List<string>> { [userId] = [] }, viewer: null);
            var list = new JsonArray();
            foreach (var device in await devices.ListAsync(s, userId))
            {
                var entry = new JsonObject { ["device_id"] = device.DeviceId };
                if (device.DisplayName is not null)
                    entry["device_display_name"] = device.DisplayName;
                if (published.DeviceKeys[userId]?[device.DeviceId] is JsonObject deviceKeys)
                {
                    var copy = deviceKeys.DeepClone().AsObject();
                    copy.Remove("unsigned");
                    entry["keys"] = copy;
                }
                list.Add(entry);
            }
            var result = new JsonObject
            {
                ["user_id"] = userId,
                ["stream_id"] = await deviceLists.PreviousChangeAsync(s, userId, long.MaxValue) ?? 0,
                ["devices"] = list,
            };
            if (published.MasterKeys[userId] is { } master)
                result["master_key"] = master.DeepClone();
            if (published.SelfSigningKeys[userId] is { } selfSigning)
                result["self_signing_key"] = selfSigning.DeepClone();
            return result;
        }, context.RequestAborted);
        await context.WriteJsonAsync(response);
    }

    private async Task QueryAsync(HttpContext context)
    {
        var (_, body) = await auth.AuthenticateAsync(context);
        if (body?["device_keys"] is not JsonObject requested)
            throw MatrixException.MissingParam("device_keys");
        var wanted = requested.Where(p => IsLocal(p.Key)).Take(KeyService.MaxUsersPerRequest)
            .ToDictionary(p => p.Key, p => (p.Value as JsonArray ?? []).Select(d => d.AsString()).OfType<string>().ToList());
        var published = await db.ReadAsync(s => localKeys.ReadAsync(s, wanted, viewer: null), context.RequestAborted);
        await context.WriteJsonAsync(new JsonObject
        {
            ["device_keys"] = published.DeviceKeys, ["master_keys"] = published.MasterKeys, ["self_signing_keys"] = published.SelfSigningKeys,
        });
    }

    private async Task ClaimAsync(HttpContext context)
    {
        var (_, body) = await auth.AuthenticateAsync(context);
        if (body?["one_time_keys"] is not JsonObject requested)
            throw MatrixException.MissingParam("one_time_keys");
        var wanted = requested.Where(p => IsLocal(p.Key) && p.Value is JsonObject).Take(KeyService.MaxUsersPerRequest)
            .ToDictionary(p => p.Key, p => p.Value!.AsObject().Where(d => d.Value?.AsString() is not null)
                .ToDictionary(d => d.Key, d => d.Value!.AsString()!));
        await context.WriteJsonAsync(new JsonObject { ["one_time_keys"] = await keys.ClaimLocalAsync(wanted, context.RequestAborted) });
    }
}
