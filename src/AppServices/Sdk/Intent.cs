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
/// the service's own user when the room requires an invite) and sends events. Rate-limited requests are retried after
/// the delay the homeserver asks for.
/// </summary>
public sealed class Intent(AppService service, string userId)
{
    private const int MaxRateLimitRetries = 5;
    private bool _registered;

    public string UserId { get; } = userId;

    public async Task EnsureRegisteredAsync(CancellationToken ct = default)
    {
        if (_registered || UserId == service.Registration.SenderUserId)
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
        _registered = true;
    }

    public async Task SetDisplayNameAsync(string displayName, CancellationToken ct = default)
    {
        await EnsureRegisteredAsync(ct);
        await SendAsUserAsync(HttpMethod.Put, $"/_matrix/client/v3/profile/{Uri.EscapeDataString(UserId)}/displayname",
            new JsonObject { ["displayname"] = displayName }, ct);
    }

    /// <summary>Joins the room; when that is forbidden, the service's own user invites this one and it joins again.</summary>
    public async Task EnsureJoinedAsync(string roomId, CancellationToken ct = default)
    {
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
    }

    public async Task<string> SendMessageAsync(string roomId, JsonObject content, CancellationToken ct = default)
    {
        await EnsureRegisteredAsync(ct);
        var answer = await SendAsUserAsync(HttpMethod.Put,
            $"/_matrix/client/v3/rooms/{Uri.EscapeDataString(roomId)}/send/m.room.message/{Guid.NewGuid():N}", content, ct);
        return answer?["event_id"]?.GetValue<string>() ?? throw new MatrixRequestException(502, null, "The homeserver returned no event ID.");
    }

    public Task<string> SendTextAsync(string roomId, string text, CancellationToken ct = default) =>
        SendMessageAsync(roomId, new JsonObject { ["msgtype"] = "m.text", ["body"] = text }, ct);

    public async Task SendStateAsync(string roomId, string type, string stateKey, JsonObject content, CancellationToken ct = default)
    {
        await EnsureRegisteredAsync(ct);
        await SendAsUserAsync(HttpMethod.Put,
            $"/_matrix/client/v3/rooms/{Uri.EscapeDataString(roomId)}/state/{Uri.EscapeDataString(type)}/{Uri.EscapeDataString(stateKey)}", content, ct);
    }

    /// <summary>Creates a room (or, with <c>creation_content.type = m.space</c>, a space) as this user.</summary>
    public async Task<string> CreateRoomAsync(JsonObject request, CancellationToken ct = default)
    {
        await EnsureRegisteredAsync(ct);
        var answer = await SendAsUserAsync(HttpMethod.Post, "/_matrix/client/v3/createRoom", request, ct);
        return answer?["room_id"]?.GetValue<string>() ?? throw new MatrixRequestException(502, null, "The homeserver returned no room ID.");
    }

    private async Task<JsonNode?> SendAsUserAsync(HttpMethod method, string path, JsonObject body, CancellationToken ct)
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
