using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Matrix.Bench.Load;

/// <summary>An account on the server under test, as the load driver uses it: only spec endpoints.</summary>
public sealed record Account(string UserId, string AccessToken);

/// <summary>The load driver's HTTP side: one pooled client for every simulated user, spec endpoints only.</summary>
public sealed class LoadClient(string baseUrl) : IDisposable
{
    private readonly HttpClient _http = new(new SocketsHttpHandler
    {
        MaxConnectionsPerServer = int.MaxValue,
        PooledConnectionIdleTimeout = TimeSpan.FromMinutes(5),
        EnableMultipleHttp2Connections = true,
    }) { Timeout = TimeSpan.FromMinutes(3) };

    public string BaseUrl => baseUrl;

    public async Task<JsonNode> SendAsync(HttpMethod method, string path, JsonNode? body, string? token, CancellationToken ct = default)
    {
        using var request = new HttpRequestMessage(method, baseUrl + path);
        if (body is not null)
            request.Content = new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json");
        if (token is not null)
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        using var response = await _http.SendAsync(request, ct);
        var text = await response.Content.ReadAsStringAsync(ct);
        if (response.StatusCode == HttpStatusCode.TooManyRequests)
            throw new InvalidOperationException($"rate limited on {path}: raise the server's rate limits for load tests");
        if (!response.IsSuccessStatusCode)
            throw new InvalidOperationException($"{method} {path}: {(int)response.StatusCode} {text}");
        return text.Length == 0 ? new JsonObject() : JsonNode.Parse(text)!;
    }

    public async Task<Account> RegisterAsync(string localpart, string password)
    {
        var body = new JsonObject { ["username"] = localpart, ["password"] = password, ["auth"] = new JsonObject { ["type"] = "m.login.dummy" } };
        var answer = await SendAsync(HttpMethod.Post, "/_matrix/client/v3/register", body, null);
        return new Account(answer["user_id"]!.GetValue<string>(), answer["access_token"]!.GetValue<string>());
    }

    public async Task<Account> LoginAsync(string userId, string password)
    {
        var body = new JsonObject
        {
            ["type"] = "m.login.password", ["password"] = password,
            ["identifier"] = new JsonObject { ["type"] = "m.id.user", ["user"] = userId },
        };
        var answer = await SendAsync(HttpMethod.Post, "/_matrix/client/v3/login", body, null);
        return new Account(answer["user_id"]!.GetValue<string>(), answer["access_token"]!.GetValue<string>());
    }

    public async Task<string> CreateRoomAsync(Account owner, IEnumerable<string>? invite = null, string preset = "public_chat")
    {
        var body = new JsonObject { ["preset"] = preset };
        if (invite is not null)
            body["invite"] = new JsonArray(invite.Select(u => (JsonNode)u).ToArray());
        return (await SendAsync(HttpMethod.Post, "/_matrix/client/v3/createRoom", body, owner.AccessToken))["room_id"]!.GetValue<string>();
    }

    public Task JoinAsync(Account user, string roomId) =>
        SendAsync(HttpMethod.Post, $"/_matrix/client/v3/join/{Uri.EscapeDataString(roomId)}", new JsonObject(), user.AccessToken);

    public Task<string> SendTextAsync(Account user, string roomId, string body, CancellationToken ct = default) =>
        SendMessageAsync(user, roomId, new JsonObject { ["msgtype"] = "m.text", ["body"] = body }, ct);

    public async Task<string> SendMessageAsync(Account user, string roomId, JsonObject content, CancellationToken ct = default) =>
        (await SendAsync(HttpMethod.Put, $"/_matrix/client/v3/rooms/{Uri.EscapeDataString(roomId)}/send/m.room.message/{Guid.NewGuid():N}",
            content, user.AccessToken, ct))["event_id"]!.GetValue<string>();

    public Task<JsonNode> SyncAsync(Account user, string? since, int timeoutMs, CancellationToken ct = default) =>
        SendAsync(HttpMethod.Get, "/_matrix/client/v3/sync?timeout=" + timeoutMs + (since is null ? "" : "&since=" + Uri.EscapeDataString(since)),
            null, user.AccessToken, ct);

    /// <summary>
    /// A long-poll as the fan-out workload makes it, read as a document without building a tree of nodes (the driver
    /// reads thousands a second); the caller disposes it.
    /// </summary>
    public async Task<JsonDocument> SyncDocumentAsync(Account user, string? since, int timeoutMs, string? filterId, CancellationToken ct = default)
    {
        var path = "/_matrix/client/v3/sync?timeout=" + timeoutMs + (since is null ? "" : "&since=" + Uri.EscapeDataString(since))
            + (filterId is null ? "" : "&filter=" + Uri.EscapeDataString(filterId));
        using var request = new HttpRequestMessage(HttpMethod.Get, baseUrl + path);
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", user.AccessToken);
        using var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, ct);
        if (!response.IsSuccessStatusCode)
            throw new InvalidOperationException($"GET /sync: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync(ct)}");
        await using var body = await response.Content.ReadAsStreamAsync(ct);
        return await JsonDocument.ParseAsync(body, default, ct);
    }

    public async Task<string> CreateFilterAsync(Account user, JsonObject filter) =>
        (await SendAsync(HttpMethod.Post, $"/_matrix/client/v3/user/{Uri.EscapeDataString(user.UserId)}/filter", filter, user.AccessToken))
            ["filter_id"]!.GetValue<string>();

    /// <summary>A simplified sliding sync request (MSC4186) on one connection, from <paramref name="pos"/> when given.</summary>
    public Task<JsonNode> SlidingSyncAsync(Account user, JsonObject body, string? pos, CancellationToken ct = default) =>
        SendAsync(HttpMethod.Post, "/_matrix/client/unstable/org.matrix.simplified_msc3575/sync" + (pos is null ? "" : "?pos=" + Uri.EscapeDataString(pos)),
            body, user.AccessToken, ct);

    public void Dispose() => _http.Dispose();
}
