using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Matrix.SpecTests.Harness;

namespace Matrix.SpecTests;

/// <summary>
/// Spec: "API standards" for bad input. Every endpoint the server serves (as its <c>routes</c> command lists them) gets
/// malformed JSON, non-objects, invalid UTF-8, deep nesting, oversized bodies, fields of the wrong type and hostile path
/// parameters: each answer must be below 500 and, when an error, the spec's <c>{errcode, error}</c> JSON; afterwards the
/// server is healthy and no malformed body has changed the room it was aimed at.
/// </summary>
public abstract partial class HostileInputTests(ServerFixture fixture)
{
    private static readonly HttpClient Http = new() { Timeout = TimeSpan.FromSeconds(100) };

    /// <summary>Field names the client-server API reads, each sent with a value of the wrong type.</summary>
    private static readonly string[] Fields =
    [
        "auth", "body", "msgtype", "content", "user_id", "room_id", "event_id", "device_id", "displayname", "avatar_url",
        "membership", "reason", "name", "topic", "preset", "visibility", "invite", "room_version", "initial_state", "is_direct",
        "creation_content", "power_level_content_override", "room_alias_name", "password", "new_password", "username", "type",
        "identifier", "token", "refresh_token", "initial_device_display_name", "device_keys", "one_time_keys", "fallback_keys",
        "timeout", "typing", "presence", "status_msg", "m.fully_read", "m.read", "thread_id", "limit", "search_term",
        "search_categories", "filter", "room", "event_fields", "event_format", "account_data", "messages", "pushkey", "kind",
        "app_id", "app_display_name", "lang", "data", "append", "actions", "conditions", "pattern", "enabled", "algorithm",
        "auth_data", "version", "rooms", "sessions", "master_key", "self_signing_key", "user_signing_key", "score", "server",
        "alias", "alt_aliases", "new_version", "logout_devices", "erase", "id_server", "id_access_token", "medium", "address",
        "sid", "client_secret", "threepid_creds", "next_link", "send_attempt", "inhibit_login", "guest_access_token",
        "refresh_token", "via", "server_name", "third_party_signed", "include_all_networks", "third_party_instance_id", "since",
    ];

    private static readonly JsonNode?[] WrongValues =
        [JsonValue.Create(12345678901), JsonValue.Create("not-what-you-expect"), new JsonArray(1, "two"), new JsonObject { ["x"] = 1 }, JsonValue.Create(true), null];

    private static readonly string[] HostileSegments =
        ["%00", "%FF%FE", new string('a', 3000), "!notaroom", "@:", "$", "'%20OR%201=1--", "%E2%80%AE", "%25", "%0A%0D"];

    private static byte[][] MalformedBodies(int maxBodyBytes)
    {
        var deep = new StringBuilder();
        for (var i = 0; i < 200; i++) deep.Append("{\"a\":");
        deep.Append('1').Append('}', 200);
        var invalidUtf8 = new List<byte>(Encoding.UTF8.GetBytes("{\"body\":\"x"));
        invalidUtf8.AddRange([0xFF, 0xC3, 0x28, 0xED, 0xA0, 0x80]);
        invalidUtf8.AddRange(Encoding.UTF8.GetBytes("\",\"msgtype\":\"m.text\",\"membership\":\"join\"}"));
        return
        [
            "{"u8.ToArray(), "{\"a\":}"u8.ToArray(), "[]"u8.ToArray(), "\"text\""u8.ToArray(), "123"u8.ToArray(), "null"u8.ToArray(),
            "{\"a\":1,\"a\":2}"u8.ToArray(), "{\"n\":1e400}"u8.ToArray(), "{\"n\":NaN}"u8.ToArray(),
            Encoding.UTF8.GetBytes(deep.ToString()), [.. invalidUtf8],
            Encoding.UTF8.GetBytes("{\"body\":\"" + new string('x', maxBodyBytes) + "\"}"),
        ];
    }

    [GeneratedRegex(@"\{\*?(\w+)\}")]
    private static partial Regex RouteParameter();

    [Fact]
    public async Task Every_endpoint_answers_hostile_input_with_a_spec_error_and_the_server_stays_healthy()
    {
        var server = fixture.Server;
        // r0 paths are aliases of v3 ones: the same handlers.
        var routes = (await server.RoutesAsync()).Where(route => !route.Template.Contains("/r0/")).ToList();
        Assert.True(routes.Count > 150, $"only {routes.Count} routes listed");

        var c = fixture.Client;
        var user = await c.RegisterAsync();
        var roomId = await RoomTests.CreateRoomAsync(c, user, new { preset = "private_chat", name = "Target" });
        var eventId = (await c.PutAsync($"/_matrix/client/v3/rooms/{RoomTests.R(roomId)}/send/m.room.message/t1", new { msgtype = "m.text", body = "x" }, user.AccessToken)).Str("event_id");
        var stateBefore = await StateSummaryAsync(c, roomId, user.AccessToken);

        var token = user.AccessToken;
        var problems = new List<string>();
        async Task CheckAsync(string method, string path, byte[]? body)
        {
            int status; string text; bool unknownToken;
            try
            {
                (status, text, unknownToken) = await SendAsync(server.BaseUrl, method, path, body, token);
            }
            catch (HttpRequestException)
            {
                // Once more on a new connection: a pooled one may have been closed by the previous refusal (413 closes).
                try
                {
                    (status, text, unknownToken) = await SendAsync(server.BaseUrl, method, path, body, token);
                }
                catch (HttpRequestException e)
                {
                    problems.Add($"{method} {Shorten(path)} [{Describe(body)}] -> no answer: {e.Message}");
                    return;
                }
            }
            if (unknownToken)
                // An endpoint took a hostile body as a logout: carry on with a new session.
                token = (await c.LoginAsync(user.Localpart, user.Password)).Str("access_token");
            // 502: a server the client named (an identity server) could not be reached; the request itself was served.
            if (status >= 500 && !(status == 502 && IsSpecError(text)))
                problems.Add($"{method} {Shorten(path)} [{Describe(body)}] -> {status} {Shorten(text)}");
            // A 401 with flows is user-interactive auth asking for a stage, the other shape the spec gives a 401.
            // Pages for people (an emailed validation link) answer in HTML.
            else if (status >= 400 && !IsSpecError(text) && !(status == 401 && text.Contains("\"flows\""))
                     && !(path.StartsWith("/_synapse/client/") && text.StartsWith("<!DOCTYPE html>")))
                problems.Add($"{method} {Shorten(path)} [{Describe(body)}] -> {status} without {{errcode, error}}: {Shorten(text)}");
        }

        var malformed = MalformedBodies(65536);
        var wrongTypes = WrongValues.Select(value => Encoding.UTF8.GetBytes(new JsonObject(Fields.Distinct()
            .Select(f => KeyValuePair.Create(f, value?.DeepClone()))).ToJsonString())).ToList();
        foreach (var (method, template) in routes)
        {
            var valid = RouteParameter().Replace(template, m => Uri.EscapeDataString(m.Groups[1].Value switch
            {
                "roomId" or "roomIdOrAlias" => roomId,
                "userId" => user.UserId,
                "eventId" => eventId,
                "serverName" => server.ServerName,
                "eventType" => "m.room.message",
                "stateKey" => "",
                _ => "x",
            }));
            // timeout=0: long-polling endpoints (/events) answer at once.
            valid += "?timeout=0";
            var takesBody = method is "POST" or "PUT";
            foreach (var body in takesBody ? malformed.Concat(wrongTypes) : [null])
                await CheckAsync(method, valid, body);
            if (RouteParameter().IsMatch(template))
                foreach (var segment in HostileSegments)
                    await CheckAsync(method, RouteParameter().Replace(template, segment) + "?timeout=0", takesBody ? "{}"u8.ToArray() : null);
            await CheckAsync(method, valid + "&limit=-1&from=%00&since=s-9_x&timeout=abc&dir=sideways&filter=%7B", takesBody ? "{}"u8.ToArray() : null);
        }
        Assert.True(problems.Count == 0, $"{problems.Count} bad answers:\n" + string.Join('\n', problems.Take(300)));

        Assert.Equal(200, (await c.GetAsync("/_matrix/client/versions")).Status);
        // The flood is one user's: a server that answers it faster than the test's per-user rate may ask that user to
        // wait (429 with retry_after_ms), which is the limiter working, not the server failing.
        var whoami = await c.GetAsync("/_matrix/client/v3/account/whoami", token);
        for (var i = 0; i < 20 && whoami.Status == 429; i++)
        {
            await Task.Delay(TimeSpan.FromMilliseconds(whoami.Body!["retry_after_ms"]!.GetValue<long>()));
            whoami = await c.GetAsync("/_matrix/client/v3/account/whoami", token);
        }
        Assert.Equal(200, whoami.Status);
        Assert.Equal(stateBefore, await StateSummaryAsync(c, roomId, token));
    }

    private static async Task<(int Status, string Text, bool UnknownToken)> SendAsync(string baseUrl, string method, string path, byte[]? body, string token)
    {
        using var request = new HttpRequestMessage(new HttpMethod(method), new Uri(baseUrl + path, UriKind.Absolute));
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        if (body is not null)
        {
            request.Content = new ByteArrayContent(body);
            request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        }
        using var response = await Http.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        return ((int)response.StatusCode, text, (int)response.StatusCode == 401 && text.Contains("M_UNKNOWN_TOKEN"));
    }

    internal static bool IsSpecError(string text)
    {
        try
        {
            return JsonNode.Parse(text) is JsonObject error && error["errcode"] is JsonValue code && code.TryGetValue<string>(out _)
                && error["error"] is JsonValue message && message.TryGetValue<string>(out _);
        }
        catch (System.Text.Json.JsonException)
        {
            return false;
        }
    }

    /// <summary>
    /// The room's state apart from memberships, as type/key/content lines: what refused bodies must leave as it was
    /// (a wrong-typed body full of nulls is a valid leave, and the user may have left by it).
    /// </summary>
    private static async Task<string> StateSummaryAsync(MatrixClient c, string roomId, string token)
    {
        var state = (await c.GetAsync($"/_matrix/client/v3/rooms/{RoomTests.R(roomId)}/state", token)).Body!.AsArray();
        return string.Join('\n', state.Where(e => e!["type"]!.GetValue<string>() is not ("m.room.member" or "m.room.message"))
            .Select(e => $"{e!["type"]}|{e["state_key"]}|{e["content"]!.ToJsonString()}").Order(StringComparer.Ordinal));
    }

    private static string Describe(byte[]? body) => body is null ? "no body" : Shorten(Encoding.UTF8.GetString(body), 60);

    private static string Shorten(string text, int max = 160) => text.Length <= max ? text : text[..max] + "…";
}

public sealed class HostileInputTestsSqlite(SqliteServer f) : HostileInputTests(f), IClassFixture<SqliteServer>;
public sealed class HostileInputTestsPostgres(PostgresServer f) : HostileInputTests(f), IClassFixture<PostgresServer>;
