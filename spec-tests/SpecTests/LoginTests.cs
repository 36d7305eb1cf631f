using System.Text.Json.Nodes;
using Matrix.SpecTests.Harness;

namespace Matrix.SpecTests;

/// <summary>Spec: client-server API, "Login" (password and token login), logout and whoami.</summary>
public abstract class LoginTests(ServerFixture fixture)
{
    private MatrixClient C => fixture.Client;

    [Fact]
    public async Task Get_login_lists_password_and_token_flows()
    {
        var response = await C.GetAsync("/_matrix/client/v3/login");
        var flows = response.Body!["flows"]!.AsArray();
        Assert.Contains(flows, f => f!["type"]!.GetValue<string>() == "m.login.password");
        Assert.Contains(flows, f => f!["type"]!.GetValue<string>() == "m.login.token" && f["get_login_token"]!.GetValue<bool>());
    }

    [Fact]
    public async Task Without_a_provider_there_is_no_single_sign_on()
    {
        var flows = (await C.GetAsync("/_matrix/client/v3/login")).Body!["flows"]!.AsArray();
        Assert.DoesNotContain(flows, f => f!["type"]!.GetValue<string>() == "m.login.sso");
        var redirect = await C.GetAsync("/_matrix/client/v3/login/sso/redirect?redirectUrl=https%3A%2F%2Fclient.example%2F");
        Assert.Equal(404, redirect.Status);
        Assert.Equal("M_UNRECOGNIZED", redirect.Errcode);
    }

    [Fact]
    public async Task Password_login_by_localpart_and_by_full_user_id()
    {
        var user = await C.RegisterAsync();
        var byLocalpart = await C.LoginAsync(user.Localpart, user.Password);
        Assert.Equal(200, byLocalpart.Status);
        Assert.Equal(user.UserId, byLocalpart.Str("user_id"));
        Assert.NotEqual(user.DeviceId, byLocalpart.Str("device_id"));
        Assert.NotNull(byLocalpart.Body!["well_known"]!["m.homeserver"]!["base_url"]);

        var byUserId = await C.LoginAsync(user.UserId, user.Password);
        Assert.Equal(200, byUserId.Status);
        var whoami = await C.GetAsync("/_matrix/client/v3/account/whoami", byUserId.Str("access_token"));
        Assert.Equal(byUserId.Str("device_id"), whoami.Str("device_id"));
        Assert.False(whoami.Body!["is_guest"]!.GetValue<bool>());
    }

    [Fact]
    public async Task Legacy_user_field_is_accepted()
    {
        var user = await C.RegisterAsync();
        var response = await C.PostAsync("/_matrix/client/v3/login", new { type = "m.login.password", user = user.Localpart, password = user.Password });
        Assert.Equal(200, response.Status);
    }

    [Fact]
    public async Task Wrong_password_and_unknown_user_are_both_403_M_FORBIDDEN()
    {
        var user = await C.RegisterAsync();
        var wrong = await C.LoginAsync(user.Localpart, "not the password");
        Assert.Equal(403, wrong.Status);
        Assert.Equal("M_FORBIDDEN", wrong.Errcode);
        var unknown = await C.LoginAsync(MatrixClient.UniqueName("ghost"), "whatever");
        Assert.Equal(403, unknown.Status);
        Assert.Equal("M_FORBIDDEN", unknown.Errcode);
        var otherServer = await C.LoginAsync($"@{user.Localpart}:elsewhere.example", user.Password);
        Assert.Equal(403, otherServer.Status);
    }

    [Fact]
    public async Task Unknown_login_type_and_identifier_type_are_rejected()
    {
        var type = await C.PostAsync("/_matrix/client/v3/login", new { type = "m.login.magic" });
        Assert.Equal(400, type.Status);
        Assert.Equal("M_UNKNOWN", type.Errcode);
        var identifier = await C.PostAsync("/_matrix/client/v3/login",
            new { type = "m.login.password", identifier = new { type = "m.id.magic", medium = "email", address = "a@b.c" }, password = "x" });
        Assert.Equal(400, identifier.Status);
        // An email address on no account is a failed login like a wrong password.
        var unknownAddress = await C.PostAsync("/_matrix/client/v3/login",
            new { type = "m.login.password", identifier = new { type = "m.id.thirdparty", medium = "email", address = "nobody@b.c" }, password = "x" });
        Assert.Equal(403, unknownAddress.Status);
    }

    [Fact]
    public async Task Logging_in_again_with_a_device_id_replaces_that_devices_token()
    {
        var user = await C.RegisterAsync();
        var first = await C.LoginAsync(user.Localpart, user.Password, new { device_id = "LAPTOP", initial_device_display_name = "Laptop" });
        var second = await C.LoginAsync(user.Localpart, user.Password, new { device_id = "LAPTOP", initial_device_display_name = "Ignored" });
        Assert.Equal("LAPTOP", second.Str("device_id"));
        Assert.Equal(401, (await C.GetAsync("/_matrix/client/v3/account/whoami", first.Str("access_token"))).Status);
        Assert.Equal(200, (await C.GetAsync("/_matrix/client/v3/account/whoami", second.Str("access_token"))).Status);
        var device = await C.GetAsync("/_matrix/client/v3/devices/LAPTOP", second.Str("access_token"));
        Assert.Equal("Laptop", device.Str("display_name"));
    }

    [Fact]
    public async Task Logout_invalidates_the_token_and_deletes_the_device()
    {
        var user = await C.RegisterAsync();
        var other = await C.LoginAsync(user.Localpart, user.Password);
        Assert.Equal(200, (await C.PostAsync("/_matrix/client/v3/logout", null, user.AccessToken)).Status);
        var afterwards = await C.GetAsync("/_matrix/client/v3/account/whoami", user.AccessToken);
        Assert.Equal(401, afterwards.Status);
        Assert.Equal("M_UNKNOWN_TOKEN", afterwards.Errcode);
        var devices = await C.GetAsync("/_matrix/client/v3/devices", other.Str("access_token"));
        Assert.DoesNotContain(devices.Body!["devices"]!.AsArray(), d => d!["device_id"]!.GetValue<string>() == user.DeviceId);
    }

    [Fact]
    public async Task Logout_all_invalidates_every_token()
    {
        var user = await C.RegisterAsync();
        var other = await C.LoginAsync(user.Localpart, user.Password);
        Assert.Equal(200, (await C.PostAsync("/_matrix/client/v3/logout/all", null, other.Str("access_token"))).Status);
        Assert.Equal(401, (await C.GetAsync("/_matrix/client/v3/account/whoami", user.AccessToken)).Status);
        Assert.Equal(401, (await C.GetAsync("/_matrix/client/v3/account/whoami", other.Str("access_token"))).Status);
        Assert.Equal(200, (await C.LoginAsync(user.Localpart, user.Password)).Status);
    }

    [Fact]
    public async Task Get_token_needs_uia_and_its_login_token_works_exactly_once()
    {
        var user = await C.RegisterAsync();
        var response = await C.WithPasswordAuthAsync(HttpMethod.Post, "/_matrix/client/v1/login/get_token", new JsonObject(), user);
        Assert.Equal(200, response.Status);
        var loginToken = response.Str("login_token");
        Assert.True(response.Body!["expires_in_ms"]!.GetValue<long>() > 0);

        var login = await C.PostAsync("/_matrix/client/v3/login", new { type = "m.login.token", token = loginToken });
        Assert.Equal(200, login.Status);
        Assert.Equal(user.UserId, login.Str("user_id"));
        var reuse = await C.PostAsync("/_matrix/client/v3/login", new { type = "m.login.token", token = loginToken });
        Assert.Equal(403, reuse.Status);
        Assert.Equal("M_FORBIDDEN", reuse.Errcode);
    }

    [Fact]
    public async Task Refresh_tokens_rotate_and_the_old_one_is_revoked_once_the_new_pair_is_used()
    {
        var user = await C.RegisterAsync();
        var login = await C.LoginAsync(user.Localpart, user.Password, new { refresh_token = true });
        Assert.True(login.Body!["expires_in_ms"]!.GetValue<long>() > 0);
        var refresh1 = login.Str("refresh_token");

        var refreshed = await C.PostAsync("/_matrix/client/v3/refresh", new { refresh_token = refresh1 });
        Assert.Equal(200, refreshed.Status);
        var refresh2 = refreshed.Str("refresh_token");
        Assert.NotEqual(refresh1, refresh2);
        Assert.True(refreshed.Body!["expires_in_ms"]!.GetValue<long>() > 0);

        // A lost response can be retried: the old refresh token still works until the new pair is used.
        var retried = await C.PostAsync("/_matrix/client/v3/refresh", new { refresh_token = refresh1 });
        Assert.Equal(200, retried.Status);
        Assert.Equal(401, (await C.GetAsync("/_matrix/client/v3/account/whoami", refreshed.Str("access_token"))).Status);

        Assert.Equal(200, (await C.GetAsync("/_matrix/client/v3/account/whoami", retried.Str("access_token"))).Status);
        var revoked = await C.PostAsync("/_matrix/client/v3/refresh", new { refresh_token = refresh1 });
        Assert.Equal(401, revoked.Status);
        Assert.Equal("M_UNKNOWN_TOKEN", revoked.Errcode);
        Assert.Equal(200, (await C.PostAsync("/_matrix/client/v3/refresh", new { refresh_token = retried.Str("refresh_token") })).Status);
    }

    [Fact]
    public async Task Refresh_with_an_unknown_token_is_401()
    {
        var response = await C.PostAsync("/_matrix/client/v3/refresh", new { refresh_token = "mar_nonsense" });
        Assert.Equal(401, response.Status);
        Assert.Equal("M_UNKNOWN_TOKEN", response.Errcode);
        Assert.Equal("M_MISSING_PARAM", (await C.PostAsync("/_matrix/client/v3/refresh", new { })).Errcode);
    }
}

public sealed class LoginTestsSqlite(SqliteServer f) : LoginTests(f), IClassFixture<SqliteServer>;
public sealed class LoginTestsPostgres(PostgresServer f) : LoginTests(f), IClassFixture<PostgresServer>;
