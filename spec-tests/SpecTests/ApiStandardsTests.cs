using System.Text.Json.Nodes;
using Matrix.SpecTests.Harness;

namespace Matrix.SpecTests;

/// <summary>Spec: client-server API, "API standards" (errors, CORS, access tokens) and server discovery.</summary>
public abstract class ApiStandardsTests(ServerFixture fixture)
{
    private MatrixClient C => fixture.Client;

    [Theory]
    [InlineData("/_matrix/client/v3/no_such_endpoint")]
    [InlineData("/_matrix/client/v3/rooms/!a:b/no_such_thing")]
    [InlineData("/_matrix/nonsense")]
    [InlineData("/totally/unknown")]
    public async Task Unknown_endpoints_are_404_M_UNRECOGNIZED(string path)
    {
        var response = await C.GetAsync(path);
        Assert.Equal(404, response.Status);
        Assert.Equal("M_UNRECOGNIZED", response.Errcode);
    }

    [Fact]
    public async Task Unknown_method_on_a_known_endpoint_is_405_M_UNRECOGNIZED()
    {
        var response = await C.SendAsync(HttpMethod.Patch, "/_matrix/client/v3/login", "{}", null);
        Assert.Equal(405, response.Status);
        Assert.Equal("M_UNRECOGNIZED", response.Errcode);
    }

    /// <summary>
    /// Kestrel refuses these before any middleware runs; the answers are still the spec's JSON errors, and on a kept-alive
    /// connection the answers around a refused or erring request arrive whole, byte for byte.
    /// </summary>
    [Fact]
    public async Task Requests_the_http_layer_refuses_get_spec_errors_and_other_answers_arrive_whole()
    {
        var tooLong = await C.GetAsync("/_matrix/client/v3/" + new string('a', 20_000));
        Assert.Equal(414, tooLong.Status);
        Assert.Equal("M_TOO_LARGE", tooLong.Errcode);

        var uri = new Uri(fixture.Server.BaseUrl);
        using var tcp = new System.Net.Sockets.TcpClient();
        await tcp.ConnectAsync(uri.Host, uri.Port);
        var stream = tcp.GetStream();
        var reader = new StreamReader(stream, System.Text.Encoding.ASCII);
        async Task<(string StatusLine, string Body)> AskAsync(string path)
        {
            await stream.WriteAsync(System.Text.Encoding.ASCII.GetBytes($"GET {path} HTTP/1.1\r\nHost: {uri.Authority}\r\n\r\n"));
            var statusLine = (await reader.ReadLineAsync())!;
            var length = 0;
            for (var header = await reader.ReadLineAsync(); header is { Length: > 0 }; header = await reader.ReadLineAsync())
                if (header.StartsWith("Content-Length:", StringComparison.OrdinalIgnoreCase))
                    length = int.Parse(header["Content-Length:".Length..]);
            var body = new char[length];
            await reader.ReadBlockAsync(body);
            return (statusLine, new string(body));
        }
        for (var round = 0; round < 2; round++)
        {
            var versions = await AskAsync("/_matrix/client/versions");
            Assert.StartsWith("HTTP/1.1 200", versions.StatusLine);
            Assert.NotNull(JsonNode.Parse(versions.Body)!["versions"]);
            var unknown = await AskAsync("/_matrix/client/v3/no_such_endpoint");
            Assert.StartsWith("HTTP/1.1 404", unknown.StatusLine);
            Assert.Equal("M_UNRECOGNIZED", JsonNode.Parse(unknown.Body)!["errcode"]!.GetValue<string>());
        }
        var refused = await AskAsync("/_matrix/client/v3/rooms/%00/state");
        Assert.StartsWith("HTTP/1.1 400", refused.StatusLine);
        Assert.Equal("M_UNRECOGNIZED", JsonNode.Parse(refused.Body)!["errcode"]!.GetValue<string>());
    }

    [Fact]
    public async Task Body_that_is_not_json_is_M_NOT_JSON()
    {
        var response = await C.PostAsync("/_matrix/client/v3/login", "{not json");
        Assert.Equal(400, response.Status);
        Assert.Equal("M_NOT_JSON", response.Errcode);
    }

    [Theory]
    [InlineData("[1,2]")]
    [InlineData("\"a string\"")]
    [InlineData("{\"type\": 5}")]
    [InlineData("{\"type\": \"m.login.password\", \"identifier\": {\"type\": \"m.id.user\", \"user\": 1}, \"password\": \"x\"}")]
    public async Task Wrong_json_shapes_are_M_BAD_JSON(string body)
    {
        var response = await C.PostAsync("/_matrix/client/v3/login", body);
        Assert.Equal(400, response.Status);
        Assert.Equal("M_BAD_JSON", response.Errcode);
    }

    [Fact]
    public async Task Missing_required_field_is_M_MISSING_PARAM()
    {
        var response = await C.PostAsync("/_matrix/client/v3/login", new { password = "x" });
        Assert.Equal(400, response.Status);
        Assert.Equal("M_MISSING_PARAM", response.Errcode);
    }

    [Fact]
    public async Task Oversized_body_is_413_M_TOO_LARGE_and_changes_nothing()
    {
        var user = await C.RegisterAsync();
        var huge = new { data = new string('x', 70_000) };
        var response = await C.PutAsync($"/_matrix/client/v3/user/{user.UserId}/account_data/org.example.big", huge, user.AccessToken);
        Assert.Equal(413, response.Status);
        Assert.Equal("M_TOO_LARGE", response.Errcode);
        var stored = await C.GetAsync($"/_matrix/client/v3/user/{user.UserId}/account_data/org.example.big", user.AccessToken);
        Assert.Equal(404, stored.Status);
    }

    [Fact]
    public async Task Nul_characters_in_strings_are_refused_cleanly()
    {
        var user = await C.RegisterAsync();
        var login = await C.PostAsync("/_matrix/client/v3/login",
            "{\"type\":\"m.login.password\",\"user\":\"" + user.Localpart + "\",\"password\":\"" + user.Password + "\",\"device_id\":\"A\\u0000B\"}");
        Assert.Equal(400, login.Status);
        Assert.Equal("M_BAD_JSON", login.Errcode);
        var rename = await C.PutAsync($"/_matrix/client/v3/devices/{user.DeviceId}", "{\"display_name\":\"a\\u0000b\"}", user.AccessToken);
        Assert.Equal("M_BAD_JSON", rename.Errcode);
        var session = await C.PostAsync("/_matrix/client/v3/register", "{\"auth\":{\"type\":\"m.login.dummy\",\"session\":\"s\\u0000\"}}");
        Assert.Equal(400, session.Status);
        Assert.Single((await C.GetAsync("/_matrix/client/v3/devices", user.AccessToken)).Body!["devices"]!.AsArray());
    }

    [Fact]
    public async Task Missing_token_is_401_M_MISSING_TOKEN()
    {
        var response = await C.GetAsync("/_matrix/client/v3/account/whoami");
        Assert.Equal(401, response.Status);
        Assert.Equal("M_MISSING_TOKEN", response.Errcode);
    }

    [Fact]
    public async Task Unknown_token_is_401_M_UNKNOWN_TOKEN_without_soft_logout()
    {
        var response = await C.GetAsync("/_matrix/client/v3/account/whoami", "mat_not_a_real_token");
        Assert.Equal(401, response.Status);
        Assert.Equal("M_UNKNOWN_TOKEN", response.Errcode);
        Assert.False(response.Body!["soft_logout"]!.GetValue<bool>());
    }

    [Fact]
    public async Task Access_token_is_accepted_as_query_parameter_and_r0_is_an_alias_of_v3()
    {
        var user = await C.RegisterAsync();
        var viaQuery = await C.GetAsync($"/_matrix/client/v3/account/whoami?access_token={Uri.EscapeDataString(user.AccessToken)}");
        Assert.Equal(user.UserId, viaQuery.Str("user_id"));
        var viaR0 = await C.GetAsync("/_matrix/client/r0/account/whoami", user.AccessToken);
        Assert.Equal(user.UserId, viaR0.Str("user_id"));
    }

    [Fact]
    public async Task Cors_preflight_and_error_responses_carry_cors_headers()
    {
        var preflight = await C.SendAsync(HttpMethod.Options, "/_matrix/client/v3/login", null, null);
        Assert.True(preflight.Status is 200 or 204);
        Assert.Equal("*", preflight.Raw.Headers.GetValues("Access-Control-Allow-Origin").Single());
        Assert.Contains("Authorization", preflight.Raw.Headers.GetValues("Access-Control-Allow-Headers").Single());
        Assert.Contains("PUT", preflight.Raw.Headers.GetValues("Access-Control-Allow-Methods").Single());

        var error = await C.GetAsync("/_matrix/client/v3/account/whoami");
        Assert.Equal("*", error.Raw.Headers.GetValues("Access-Control-Allow-Origin").Single());
        var unknown = await C.GetAsync("/_matrix/client/v3/nothing_here");
        Assert.Equal("*", unknown.Raw.Headers.GetValues("Access-Control-Allow-Origin").Single());
    }

    [Fact]
    public async Task Versions_lists_spec_versions()
    {
        var response = await C.GetAsync("/_matrix/client/versions");
        Assert.Equal(200, response.Status);
        var versions = response.Body!["versions"]!.AsArray().Select(v => v!.GetValue<string>()).ToList();
        Assert.Contains("v1.19", versions);
        var unstable = response.Body["unstable_features"]!.AsObject();
        // Element Web 1.11.88 sets up cross-signing at registration only when this flag is true.
        Assert.True(unstable["org.matrix.e2e_cross_signing"]!.GetValue<bool>());
        Assert.True(unstable["org.matrix.msc3440.stable"]!.GetValue<bool>());
    }

    [Fact]
    public async Task Well_known_client_names_the_homeserver_and_server_delegation_is_off_by_default()
    {
        var client = await C.GetAsync("/.well-known/matrix/client");
        Assert.Equal(200, client.Status);
        Assert.StartsWith("http", client.Body!["m.homeserver"]!["base_url"]!.GetValue<string>());
        var server = await C.GetAsync("/.well-known/matrix/server");
        Assert.Equal(404, server.Status);
        Assert.Equal("M_NOT_FOUND", server.Errcode);
    }

    [Fact]
    public async Task Capabilities_require_auth_and_describe_the_account_features()
    {
        Assert.Equal(401, (await C.GetAsync("/_matrix/client/v3/capabilities")).Status);
        var user = await C.RegisterAsync();
        var response = await C.GetAsync("/_matrix/client/v3/capabilities", user.AccessToken);
        var capabilities = response.Body!["capabilities"]!;
        Assert.True(capabilities["m.change_password"]!["enabled"]!.GetValue<bool>());
        Assert.True(capabilities["m.profile_fields"]!["enabled"]!.GetValue<bool>());
        Assert.True(capabilities["m.get_login_token"]!["enabled"]!.GetValue<bool>());
        Assert.False(capabilities["m.3pid_changes"]!["enabled"]!.GetValue<bool>());
        Assert.Equal("11", capabilities["m.room_versions"]!["default"]!.GetValue<string>());
        Assert.Equal(Enumerable.Range(1, 12).Select(v => v.ToString()),
            capabilities["m.room_versions"]!["available"]!.AsObject().Where(p => p.Value!.GetValue<string>() == "stable").Select(p => p.Key));
    }
}

public sealed class ApiStandardsTestsSqlite(SqliteServer f) : ApiStandardsTests(f), IClassFixture<SqliteServer>;
public sealed class ApiStandardsTestsPostgres(PostgresServer f) : ApiStandardsTests(f), IClassFixture<PostgresServer>;
