using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Matrix.SpecTests.Harness;

public sealed record MatrixResponse(int Status, JsonNode? Body, HttpResponseMessage Raw)
{
    public string? Errcode => Body is JsonObject obj && obj["errcode"] is JsonValue value ? value.GetValue<string>() : null;
    public string Str(string name) => Body![name]!.GetValue<string>();
    public override string ToString() => $"{Status} {Body?.ToJsonString()}";
}

public sealed record LoggedInUser(string UserId, string AccessToken, string DeviceId, string Password, string Localpart);

/// <summary>A minimal HTTP client for the client-server API, as a black box: only status codes and JSON bodies.</summary>
public sealed class MatrixClient(string baseUrl, string serverName)
{
    private static readonly HttpClient Http = new() { Timeout = TimeSpan.FromSeconds(60) };

    public string ServerName => serverName;

    public static string UniqueName(string prefix = "user") => $"{prefix}{Guid.NewGuid().ToString("N")[..10]}";

    public Task<MatrixResponse> GetAsync(string path, string? token = null) => SendAsync(HttpMethod.Get, path, null, token);
    public Task<MatrixResponse> PostAsync(string path, object? body, string? token = null) => SendAsync(HttpMethod.Post, path, body, token);
    public Task<MatrixResponse> PutAsync(string path, object? body, string? token = null) => SendAsync(HttpMethod.Put, path, body, token);
    public Task<MatrixResponse> DeleteAsync(string path, object? body = null, string? token = null) => SendAsync(HttpMethod.Delete, path, body, token);

    /// <param name="body">an object serialised to JSON, or a string sent as it is</param>
    public async Task<MatrixResponse> SendAsync(HttpMethod method, string path, object? body, string? token, string contentType = "application/json")
    {
        using var request = new HttpRequestMessage(method, baseUrl + path);
        if (body is not null)
            request.Content = new StringContent(body as string ?? JsonSerializer.Serialize(body), Encoding.UTF8, contentType);
        if (token is not null)
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        var response = await Http.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        JsonNode? json = null;
        if (text.Length > 0)
        {
            try { json = JsonNode.Parse(text); }
            catch (JsonException) { json = JsonValue.Create(text); }
        }
        return new MatrixResponse((int)response.StatusCode, json, response);
    }

    /// <summary>Registers through the dummy flow, as Element does: a first request for the flows, then the stage.</summary>
    public async Task<LoggedInUser> RegisterAsync(string? localpart = null, string password = "correct horse battery", string? deviceId = null)
    {
        localpart ??= UniqueName();
        var first = await PostAsync("/_matrix/client/v3/register", new { username = localpart, password });
        Assert.True(first.Status == 401, first.ToString());
        var session = first.Str("session");
        var done = await PostAsync("/_matrix/client/v3/register", new
        {
            username = localpart, password, device_id = deviceId, auth = new { type = "m.login.dummy", session },
        });
        Assert.True(done.Status == 200, done.ToString());
        return new LoggedInUser(done.Str("user_id"), done.Str("access_token"), done.Str("device_id"), password, localpart);
    }

    public async Task<MatrixResponse> LoginAsync(string user, string password, object? extra = null)
    {
        var body = new JsonObject
        {
            ["type"] = "m.login.password",
            ["identifier"] = new JsonObject { ["type"] = "m.id.user", ["user"] = user },
            ["password"] = password,
        };
        if (extra is not null)
            foreach (var (key, value) in JsonSerializer.SerializeToNode(extra)!.AsObject())
                body[key] = value?.DeepClone();
        return await PostAsync("/_matrix/client/v3/login", body.ToJsonString());
    }

    /// <summary>The <c>auth</c> object of an m.login.password UIA stage.</summary>
    public static object PasswordAuth(string session, string userId, string password) =>
        new { type = "m.login.password", session, identifier = new { type = "m.id.user", user = userId }, password };

    /// <summary>Completes a password UIA stage for an endpoint: expects the 401 first, then sends the stage.</summary>
    public async Task<MatrixResponse> WithPasswordAuthAsync(HttpMethod method, string path, JsonObject body, LoggedInUser user)
    {
        var first = await SendAsync(method, path, body.ToJsonString(), user.AccessToken);
        Assert.True(first.Status == 401, first.ToString());
        body["auth"] = new JsonObject
        {
            ["type"] = "m.login.password",
            ["session"] = first.Str("session"),
            ["identifier"] = new JsonObject { ["type"] = "m.id.user", ["user"] = user.UserId },
            ["password"] = user.Password,
        };
        return await SendAsync(method, path, body.ToJsonString(), user.AccessToken);
    }
}
