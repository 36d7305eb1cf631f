using System.Text.Json.Nodes;

namespace Matrix.AppServices.Sdk;

public sealed class MatrixRequestException(int status, string? errcode, string message) : Exception(message)
{
    public int Status { get; } = status;
    public string? Errcode { get; } = errcode;
}

/// <summary>
/// Acts as one user of the service's namespaces through the client-server API (identity assertion with the
/// <c>as_token</c> and <c>user_id</c>): registers the user when needed, sets its profile, joins rooms (inviting it with
/// the service's own user when the room requires an invite) and sends events. Registrations and joins are remembered
/// in the service's state store, so they cost a request only once. Rate-limited requests are retried after the delay
/// the homeserver asks for.
/// </summary>
public sealed class Intent(AppService service, string userId)
{
    private const int MaxRateLimitRetries = 5;

    public string UserId { get; } = userId;

    public async Task EnsureRegisteredAsync(CancellationToken ct = default)
    {
        if (UserId == service.Registration.SenderUserId || service.State.IsRegistered(UserId))
            return;
        var localpart = UserId[1..UserId.IndexOf(':')];
        try
        {
            await service.RequestAsync(HttpMethod.Post, "/_matrix/client/v3/register", null,
                new JsonObject { ["type"] = "m.login.application_service", ["username"] = localpart, ["inhibit_login"] = true }, ct);
        }
        catch (MatrixRequestException e) when (e.Errcode == "M_USER_IN_USE")
        {
        }
        service.State.MarkRegistered(UserId);
    }

    public async Task SetDisplayNameAsync(string displayName, CancellationToken ct = default)
    {
        await EnsureRegisteredAsync(ct);
        await SendAsUserAsync(HttpMethod.Put, $"/_matrix/client/v3/profile/{Uri.EscapeDataString(UserId)}/displayname",
            new JsonObject { ["displayname"] = displayName }, ct);
    }

    /// <summary>Sets (or, with null, removes) this user's avatar.</summary>
    public async Task SetAvatarUrlAsync(string? contentUri, CancellationToken ct = default)
    {
        await EnsureRegisteredAsync(ct);
        var path = $"/_matrix/client/v3/profile/{Uri.EscapeDataString(UserId)}/avatar_url";
        if (contentUri is null)
            await SendAsUserAsync(HttpMethod.Delete, path, null, ct);
        else
            await SendAsUserAsync(HttpMethod.Put, path, new JsonObject { ["avatar_url"] = contentUri }, ct);
    }

    /// <summary>Uploads content to the media repository as this user; returns its <c>mxc://</c> URI.</summary>
    public async Task<string> UploadAsync(byte[] content, string contentType, string? fileName = null, CancellationToken ct = default)
    {
        await EnsureRegisteredAsync(ct);
        var path = "/_matrix/media/v3/upload" + (fileName is null ? "" : "?filename=" + Uri.EscapeDataString(fileName));
        var body = new ByteArrayContent(content);
        body.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue(contentType);
        var answer = await service.RequestAsync(HttpMethod.Post, path, UserId, body, ct);
        return answer?["content_uri"]?.GetValue<string>() ?? throw new MatrixRequestException(200, null, "the upload answer has no content_uri");
    }

    /// <summary>Joins the room; when that is forbidden, the service's own user invites this one and it joins again.</summary>
    public async Task EnsureJoinedAsync(string roomId, CancellationToken ct = default)
    {
        if (service.State.IsJoined(roomId, UserId))
            return;
        await EnsureRegisteredAsync(ct);
        var join = $"/_matrix/client/v3/join/{Uri.EscapeDataString(roomId)}";
        try
        {
            await SendAsUserAsync(HttpMethod.Post, join, new JsonObject(), ct);
        }
        catch (MatrixRequestException e) when (e.Status == 403 && UserId != service.Registration.SenderUserId)
        {
            await service.Intent(service.Registration.SenderUserId).SendAsUserAsync(HttpMethod.Post,
                $"/_matrix/client/v3/rooms/{Uri.EscapeDataString(roomId)}/invite", new JsonObject { ["user_id"] = UserId }, ct);
            await SendAsUserAsync(HttpMethod.Post, join, new JsonObject(), ct);
        }
        service.State.SetJoined(roomId, UserId, joined: true);
    }

    public async Task LeaveAsync(string roomId, CancellationToken ct = default)
    {
        await SendAsUserAsync(HttpMethod.Post, $"/_matrix/client/v3/rooms/{Uri.EscapeDataString(roomId)}/leave", new JsonObject(), ct);
        service.State.SetJoined(roomId, UserId, joined: false);
    }

    public Task<string> SendMessageAsync(string roomId, JsonObject content, CancellationToken ct = default) =>
        SendMessageAsync(roomId, content, Guid.NewGuid().ToString("N"), ct);

    /// <summary>
    /// Sends a message under a transaction ID of the bridge's choosing: sending again with the same ID (a retry after
    /// a crash or a lost answer) returns the first event instead of posting twice.
    /// </summary>
    public async Task<string> SendMessageAsync(string roomId, JsonObject content, string transactionId, CancellationToken ct)
    {
        await EnsureRegisteredAsync(ct);
        var answer = await SendAsUserAsync(HttpMethod.Put,
            $"/_matrix/client/v3/rooms/{Uri.EscapeDataString(roomId)}/send/m.room.message/{Uri.EscapeDataString(transactionId)}", content, ct);
        return answer?["event_id"]?.GetValue<string>() ?? throw new MatrixRequestException(502, null, "The homeserver returned no event ID.");
    }

    /// <summary>Redacts an event (a message that should not stay readable, such as one holding a password).</summary>
    public async Task RedactAsync(string roomId, string eventId, string reason, CancellationToken ct = default) =>
        await SendAsUserAsync(HttpMethod.Put,
            $"/_matrix/client/v3/rooms/{Uri.EscapeDataString(roomId)}/redact/{Uri.EscapeDataString(eventId)}/{Guid.NewGuid():N}",
            new JsonObject { ["reason"] = reason }, ct);

    public Task<string> SendTextAsync(string roomId, string text, CancellationToken ct = default) =>
        SendMessageAsync(roomId, new JsonObject { ["msgtype"] = "m.text", ["body"] = text }, ct);

    public async Task SendStateAsync(string roomId, string type, string stateKey, JsonObject content, CancellationToken ct = default)
    {
        await EnsureRegisteredAsync(ct);
        await SendAsUserAsync(HttpMethod.Put, StatePath(roomId, type, stateKey), content, ct);
    }

    /// <summary>Creates a room (or, with <c>creation_content.type = m.space</c>, a space) as this user.</summary>
    public async Task<string> CreateRoomAsync(JsonObject request, CancellationToken ct = default)
    {
        await EnsureRegisteredAsync(ct);
        var answer = await SendAsUserAsync(HttpMethod.Post, "/_matrix/client/v3/createRoom", request, ct);
        return answer?["room_id"]?.GetValue<string>() ?? throw new MatrixRequestException(502, null, "The homeserver returned no room ID.");
    }

    public async Task InviteAsync(string roomId, string userId, CancellationToken ct = default) =>
        await SendAsUserAsync(HttpMethod.Post, $"/_matrix/client/v3/rooms/{Uri.EscapeDataString(roomId)}/invite", new JsonObject { ["user_id"] = userId }, ct);

    public async Task KickAsync(string roomId, string userId, string reason, CancellationToken ct = default) =>
        await SendAsUserAsync(HttpMethod.Post, $"/_matrix/client/v3/rooms/{Uri.EscapeDataString(roomId)}/kick",
            new JsonObject { ["user_id"] = userId, ["reason"] = reason }, ct);

    /// <summary>The members of a room by membership (join, invite, leave, ban, knock), as this user sees them.</summary>
    public async Task<Dictionary<string, string>> MembershipsAsync(string roomId, CancellationToken ct = default)
    {
        var answer = await SendAsUserAsync(HttpMethod.Get, $"/_matrix/client/v3/rooms/{Uri.EscapeDataString(roomId)}/members", null, ct);
        return (answer?["chunk"] as JsonArray ?? []).OfType<JsonObject>()
            .Select(e => (User: e["state_key"]?.GetValue<string>(), Membership: e["content"]?["membership"]?.GetValue<string>()))
            .Where(m => m.User is not null && m.Membership is not null)
            .ToDictionary(m => m.User!, m => m.Membership!, StringComparer.Ordinal);
    }

    /// <summary>A state event's content, or null when the room has none.</summary>
    public Task<JsonObject?> GetStateAsync(string roomId, string type, string stateKey, CancellationToken ct = default) =>
        GetOrNullAsync(StatePath(roomId, type, stateKey), ct);

    /// <summary>A whole state event (with its sender), or null when the room has none.</summary>
    public Task<JsonObject?> GetStateEventAsync(string roomId, string type, string stateKey, CancellationToken ct = default) =>
        GetOrNullAsync(StatePath(roomId, type, stateKey) + "?format=event", ct);

    private static string StatePath(string roomId, string type, string stateKey) =>
        $"/_matrix/client/v3/rooms/{Uri.EscapeDataString(roomId)}/state/{Uri.EscapeDataString(type)}/{Uri.EscapeDataString(stateKey)}";

    private async Task<JsonObject?> GetOrNullAsync(string path, CancellationToken ct)
    {
        try
        {
            return await SendAsUserAsync(HttpMethod.Get, path, null, ct) as JsonObject;
        }
        catch (MatrixRequestException e) when (e.Status == 404)
        {
            return null;
        }
    }

    /// <summary>The room an alias names, or null when it names none.</summary>
    public async Task<string?> ResolveAliasAsync(string alias, CancellationToken ct = default)
    {
        try
        {
            return (await SendAsUserAsync(HttpMethod.Get, $"/_matrix/client/v3/directory/room/{Uri.EscapeDataString(alias)}", null, ct))?["room_id"]?.GetValue<string>();
        }
        catch (MatrixRequestException e) when (e.Status == 404)
        {
            return null;
        }
    }

    /// <summary>Deactivates this user (an application service needs no interactive auth for its users): logged out everywhere.</summary>
    public async Task DeactivateAsync(CancellationToken ct = default)
    {
        await SendAsUserAsync(HttpMethod.Post, "/_matrix/client/v3/account/deactivate", new JsonObject(), ct);
        service.State.Forget(UserId);
    }

    /// <summary>
    /// Reactivates this deactivated user through Synapse's admin API (<c>PUT /_synapse/admin/v2/users</c>), which our
    /// homeserver lets an application service call for that alone, for users of its namespaces. The profile, rooms and
    /// devices the deactivation removed are not restored.
    /// </summary>
    public async Task ReactivateAsync(CancellationToken ct = default) =>
        await service.RequestAsync(HttpMethod.Put, $"/_synapse/admin/v2/users/{Uri.EscapeDataString(UserId)}", null,
            new JsonObject { ["deactivated"] = false }, ct);

    /// <summary>Creates a space (a room of type <c>m.space</c>) with the given name, private unless <paramref name="isPublic"/>.</summary>
    public Task<string> CreateSpaceAsync(string name, bool isPublic = false, CancellationToken ct = default) =>
        CreateRoomAsync(new JsonObject
        {
            ["name"] = name,
            ["preset"] = isPublic ? "public_chat" : "private_chat",
            ["creation_content"] = new JsonObject { ["type"] = "m.space" },
        }, ct);

    /// <summary>Puts a room into a space: <c>m.space.child</c> in the space and <c>m.space.parent</c> in the room, via this server.</summary>
    public async Task AddToSpaceAsync(string spaceId, string roomId, CancellationToken ct = default)
    {
        var via = new JsonArray(UserId[(UserId.IndexOf(':') + 1)..]);
        await SendStateAsync(spaceId, "m.space.child", roomId, new JsonObject { ["via"] = via.DeepClone() }, ct);
        await SendStateAsync(roomId, "m.space.parent", spaceId, new JsonObject { ["via"] = via, ["canonical"] = true }, ct);
    }

    private async Task<JsonNode?> SendAsUserAsync(HttpMethod method, string path, JsonObject? body, CancellationToken ct)
    {
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                return await service.RequestAsync(method, path, UserId, body, ct);
            }
            catch (RateLimitedException e) when (attempt < MaxRateLimitRetries)
            {
                await Task.Delay(e.RetryAfter, ct);
            }
        }
    }
}

internal sealed class RateLimitedException(TimeSpan retryAfter) : Exception("rate limited")
{
    public TimeSpan RetryAfter { get; } = retryAfter;
}
