using System.Text.Json;
using System.Text.Json.Nodes;
using Matrix.Homeserver.Accounts;
using Matrix.Homeserver.Http;

namespace Matrix.Homeserver.E2ee;

/// <summary>Spec: server-side key backups, <c>room_keys/version</c> and <c>room_keys/keys</c> at all three levels.</summary>
public sealed class KeyBackupEndpoints(Authenticator authenticator, JsonBody json, KeyBackupService backups) : IEndpoints
{
    public void Map(IEndpointRouteBuilder app)
    {
        app.MapV3("POST", "room_keys/version", CreateVersionAsync);
        app.MapV3("GET", "room_keys/version", GetLatestVersionAsync);
        app.MapV3("GET", "room_keys/version/{version}", GetVersionAsync);
        app.MapV3("PUT", "room_keys/version/{version}", UpdateVersionAsync);
        app.MapV3("DELETE", "room_keys/version/{version}", DeleteVersionAsync);
        foreach (var path in new[] { "room_keys/keys", "room_keys/keys/{roomId}", "room_keys/keys/{roomId}/{sessionId}" })
        {
            app.MapV3("PUT", path, PutKeysAsync);
            app.MapV3("GET", path, GetKeysAsync);
            app.MapV3("DELETE", path, DeleteKeysAsync);
        }
    }

    private async Task CreateVersionAsync(HttpContext context)
    {
        var requester = await authenticator.AuthenticateAsync(context);
        var body = await json.ReadObjectAsync(context);
        var (algorithm, authData) = ReadVersionBody(body);
        var version = await backups.CreateVersionAsync(requester.UserId.Value, algorithm, authData, context.RequestAborted);
        await context.WriteJsonAsync(new JsonObject { ["version"] = version.ToString(System.Globalization.CultureInfo.InvariantCulture) });
    }

    private static (string Algorithm, JsonObject AuthData) ReadVersionBody(JsonElement body)
    {
        // Any algorithm: the server stores backups without reading them (session_data is opaque), as Synapse does.
        var algorithm = body.RequiredString("algorithm");
        var authData = body.OptionalObject("auth_data") ?? throw MatrixException.MissingParam("auth_data");
        return (algorithm, KeyObjects.ToObject(authData, "auth_data"));
    }

    private async Task GetLatestVersionAsync(HttpContext context)
    {
        var requester = await authenticator.AuthenticateAsync(context);
        await context.WriteJsonAsync(await backups.DescribeAsync(requester.UserId.Value, null, context.RequestAborted));
    }

    private async Task GetVersionAsync(HttpContext context)
    {
        var requester = await authenticator.AuthenticateAsync(context);
        var version = KeyBackupService.ParseVersion(context.Route("version"));
        await context.WriteJsonAsync(await backups.DescribeAsync(requester.UserId.Value, version, context.RequestAborted));
    }

    private async Task UpdateVersionAsync(HttpContext context)
    {
        var requester = await authenticator.AuthenticateAsync(context);
        var pathVersion = context.Route("version");
        var body = await json.ReadObjectAsync(context);
        var (algorithm, authData) = ReadVersionBody(body);
        if (body.OptionalString("version") is { } bodyVersion && bodyVersion != pathVersion)
            throw MatrixException.InvalidParam("The version in the body does not match the version in the path.");
        await backups.UpdateVersionAsync(requester.UserId.Value, KeyBackupService.ParseVersion(pathVersion), algorithm, authData, context.RequestAborted);
        await context.WriteJsonAsync(new JsonObject());
    }

    private async Task DeleteVersionAsync(HttpContext context)
    {
        var requester = await authenticator.AuthenticateAsync(context);
        await backups.DeleteVersionAsync(requester.UserId.Value, KeyBackupService.ParseVersion(context.Route("version")), context.RequestAborted);
        await context.WriteJsonAsync(new JsonObject());
    }

    private static long VersionParameter(HttpContext context) =>
        KeyBackupService.ParseVersion(context.Query("version") is { Length: > 0 } v ? v : throw MatrixException.MissingParam("version"));

    private static string? OptionalRoute(HttpContext context, string name) =>
        context.Request.RouteValues.ContainsKey(name) ? context.Route(name) : null;

    private async Task PutKeysAsync(HttpContext context)
    {
        var requester = await authenticator.AuthenticateAsync(context);
        var version = VersionParameter(context);
        var body = await json.ReadObjectAsync(context);
        var roomId = OptionalRoute(context, "roomId");
        var sessionId = OptionalRoute(context, "sessionId");
        var keys = new List<BackupKeyRow>();
        if (sessionId is not null)
            keys.Add(ReadKey(roomId!, sessionId, body));
        else if (roomId is not null)
            AddSessions(keys, roomId, body);
        else
            foreach (var room in (body.OptionalObject("rooms") ?? throw MatrixException.MissingParam("rooms")).EnumerateObject())
                AddSessions(keys, room.Name, room.Value.ValueKind == JsonValueKind.Object ? room.Value : throw MatrixException.BadJson($"rooms.{room.Name} must be an object."));
        await context.WriteJsonAsync(await backups.PutKeysAsync(requester.UserId.Value, version, keys, context.RequestAborted));
    }

    private static void AddSessions(List<BackupKeyRow> keys, string roomId, JsonElement roomBody)
    {
        foreach (var session in (roomBody.OptionalObject("sessions") ?? throw MatrixException.MissingParam("sessions")).EnumerateObject())
            keys.Add(ReadKey(roomId, session.Name, session.Value));
    }

    private static BackupKeyRow ReadKey(string roomId, string sessionId, JsonElement key)
    {
        if (key.ValueKind != JsonValueKind.Object)
            throw MatrixException.BadJson($"The key of session {sessionId} must be an object.");
        var firstMessageIndex = key.OptionalInteger("first_message_index") ?? throw MatrixException.MissingParam("first_message_index");
        var forwardedCount = key.OptionalInteger("forwarded_count") ?? throw MatrixException.MissingParam("forwarded_count");
        var isVerified = key.OptionalBool("is_verified") ?? throw MatrixException.MissingParam("is_verified");
        var sessionData = key.OptionalObject("session_data") ?? throw MatrixException.MissingParam("session_data");
        return new BackupKeyRow(JsonFields.WithoutNul(roomId, "roomId"), JsonFields.WithoutNul(sessionId, "sessionId"), firstMessageIndex, forwardedCount,
            isVerified ? 1 : 0, KeyObjects.ToObject(sessionData, "session_data").ToJsonString());
    }

    private async Task GetKeysAsync(HttpContext context)
    {
        var requester = await authenticator.AuthenticateAsync(context);
        var roomId = OptionalRoute(context, "roomId");
        var sessionId = OptionalRoute(context, "sessionId");
        var keys = await backups.GetKeysAsync(requester.UserId.Value, VersionParameter(context), roomId, sessionId, context.RequestAborted);
        if (sessionId is not null)
        {
            await context.WriteJsonAsync(keys.Count > 0 ? KeyJson(keys[0]) : throw MatrixException.NotFound("No key for that session."));
            return;
        }
        var rooms = new JsonObject();
        foreach (var room in keys.GroupBy(k => k.RoomId))
            rooms[room.Key] = new JsonObject { ["sessions"] = new JsonObject(room.Select(k => KeyValuePair.Create(k.SessionId, (JsonNode?)KeyJson(k)))) };
        await context.WriteJsonAsync(roomId is null ? new JsonObject { ["rooms"] = rooms } : rooms[roomId]?.DeepClone() ?? new JsonObject { ["sessions"] = new JsonObject() });
    }

    private static JsonObject KeyJson(BackupKeyRow key) => new()
    {
        ["first_message_index"] = key.FirstMessageIndex,
        ["forwarded_count"] = key.ForwardedCount,
        ["is_verified"] = key.IsVerified != 0,
        ["session_data"] = JsonNode.Parse(key.SessionData),
    };

    private async Task DeleteKeysAsync(HttpContext context)
    {
        var requester = await authenticator.AuthenticateAsync(context);
        await context.WriteJsonAsync(await backups.DeleteKeysAsync(requester.UserId.Value, VersionParameter(context),
            OptionalRoute(context, "roomId"), OptionalRoute(context, "sessionId"), context.RequestAborted));
    }
}
