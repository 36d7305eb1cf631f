using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Matrix.Homeserver.Accounts;
using Matrix.Homeserver.Http;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Push;

/// <summary>Spec: Push notifications, pushers: <c>GET /pushers</c> and <c>POST /pushers/set</c>.</summary>
public sealed class PusherEndpoints(
    Authenticator authenticator, JsonBody json, Database db, PusherStore pushers, StreamPositions streams, TimeProvider clock, PushSender sender)
    : IEndpoints
{
    private const string NotifyPath = "/_matrix/push/v1/notify";

    public void Map(IEndpointRouteBuilder app)
    {
        app.MapV3("GET", "pushers", GetAsync);
        app.MapV3("POST", "pushers/set", SetAsync);
    }

    private async Task GetAsync(HttpContext context)
    {
        var requester = await authenticator.AuthenticateAsync(context);
        var rows = await db.ReadAsync(s => pushers.ForUserAsync(s, requester.UserId.Value), context.RequestAborted);
        await context.WriteJsonAsync(new JsonObject { ["pushers"] = new JsonArray(rows.Select(row => (JsonNode)ToJson(row)).ToArray()) });
    }

    /// <summary>A pusher as <c>GET /pushers</c> (and Synapse's admin API) shows it.</summary>
    public static JsonObject ToJson(PusherRow row)
    {
        var pusher = new JsonObject
        {
            ["pushkey"] = row.Pushkey, ["kind"] = row.Kind, ["app_id"] = row.AppId, ["app_display_name"] = row.AppDisplayName,
            ["device_display_name"] = row.DeviceDisplayName, ["lang"] = row.Lang, ["data"] = JsonNode.Parse(row.DataJson),
        };
        if (row.ProfileTag is not null)
            pusher["profile_tag"] = row.ProfileTag;
        return pusher;
    }

    private async Task SetAsync(HttpContext context)
    {
        var requester = await authenticator.AuthenticateAsync(context);
        var body = await json.ReadObjectAsync(context);
        var appId = Required(body, "app_id");
        var pushkey = Required(body, "pushkey");
        if (appId.Length > 64)
            throw MatrixException.InvalidParam("app_id must be at most 64 characters.");
        if (Encoding.UTF8.GetByteCount(pushkey) > 512)
            throw MatrixException.InvalidParam("pushkey must be at most 512 bytes.");
        if (!body.TryGetProperty("kind", out var kindElement))
            throw MatrixException.MissingParam("kind");
        var userId = requester.UserId.Value;
        if (kindElement.ValueKind == JsonValueKind.Null)
        {
            await db.WriteAsync(s => pushers.DeleteAsync(s, userId, appId, pushkey), context.RequestAborted);
            await context.WriteJsonAsync(new JsonObject());
            return;
        }
        var kind = kindElement.ValueKind == JsonValueKind.String ? kindElement.GetString()! : throw MatrixException.BadJson("'kind' must be a string or null.");
        if (kind != "http")
            throw MatrixException.InvalidParam($"Pushers of kind '{kind}' are not supported here; use 'http'.");
        if (!body.TryGetProperty("data", out var data) || data.ValueKind != JsonValueKind.Object)
            throw MatrixException.MissingParam("data");
        var url = data.OptionalString("url") ?? throw MatrixException.MissingParam("data.url");
        if (!Uri.TryCreate(url, UriKind.Absolute, out var gateway) || gateway.Scheme is not ("https" or "http") || gateway.AbsolutePath != NotifyPath)
            throw MatrixException.InvalidParam($"data.url must be an http(s) URL with the path {NotifyPath}.");
        var append = body.TryGetProperty("append", out var appendElement) && appendElement.ValueKind == JsonValueKind.True;

        await db.WriteAsync(async s =>
        {
            await pushers.UpsertAsync(s, new PusherRow
            {
                UserId = userId, AppId = appId, Pushkey = pushkey, Kind = kind, AppDisplayName = Required(body, "app_display_name"),
                DeviceDisplayName = Required(body, "device_display_name"), ProfileTag = body.OptionalString("profile_tag"),
                Lang = Required(body, "lang"), DataJson = data.GetRawText(), DeviceId = requester.DeviceId,
                CreatedTs = clock.GetUtcNow().ToUnixTimeMilliseconds(),
                // Only what happens from now on is pushed.
                LastStreamOrdering = await streams.CurrentAsync(s, "events"),
            });
            if (!append)
                await pushers.DeleteOtherUsersAsync(s, userId, appId, pushkey);
        }, context.RequestAborted);
        sender.Wake();
        await context.WriteJsonAsync(new JsonObject());
    }

    private static string Required(JsonElement body, string name) => body.OptionalString(name) ?? throw MatrixException.MissingParam(name);
}
