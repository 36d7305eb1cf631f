using System.Security.Cryptography;
using System.Text;
using Matrix.SpecTests.Harness;

namespace Matrix.SpecTests;

/// <summary>Spec: client-server API, "Account registration and management" (registration half), plus Synapse's shared-secret and token admin APIs.</summary>
public abstract class RegistrationTests(ServerFixture fixture)
{
    private MatrixClient C => fixture.Client;

    [Fact]
    public async Task First_request_returns_the_dummy_flow_and_a_session()
    {
        var response = await C.PostAsync("/_matrix/client/v3/register", new { username = MatrixClient.UniqueName(), password = "pw" });
        Assert.Equal(401, response.Status);
        Assert.Equal("m.login.dummy", response.Body!["flows"]![0]!["stages"]![0]!.GetValue<string>());
        Assert.False(string.IsNullOrEmpty(response.Str("session")));
        Assert.Empty(response.Body["completed"]!.AsArray());
        Assert.Null(response.Errcode);
    }

    [Fact]
    public async Task Registration_logs_in_with_a_working_token_and_device()
    {
        var user = await C.RegisterAsync(deviceId: "MYDEVICE");
        Assert.Equal($"@{user.Localpart}:{C.ServerName}", user.UserId);
        Assert.Equal("MYDEVICE", user.DeviceId);
        Assert.True(user.AccessToken.Length >= 43, "access tokens carry at least 256 random bits");
        var whoami = await C.GetAsync("/_matrix/client/v3/account/whoami", user.AccessToken);
        Assert.Equal(user.UserId, whoami.Str("user_id"));
        Assert.Equal("MYDEVICE", whoami.Str("device_id"));
    }

    [Fact]
    public async Task Taken_username_is_M_USER_IN_USE_before_any_auth_stage()
    {
        var user = await C.RegisterAsync();
        var again = await C.PostAsync("/_matrix/client/v3/register", new { username = user.Localpart, password = "other" });
        Assert.Equal(400, again.Status);
        Assert.Equal("M_USER_IN_USE", again.Errcode);
        var available = await C.GetAsync($"/_matrix/client/v3/register/available?username={user.Localpart}");
        Assert.Equal("M_USER_IN_USE", available.Errcode);
    }

    [Theory]
    [InlineData("has space")]
    [InlineData("colon:inside")]
    [InlineData("_reserved")]
    [InlineData("ümlaut")]
    public async Task Invalid_usernames_are_M_INVALID_USERNAME(string username)
    {
        var response = await C.PostAsync("/_matrix/client/v3/register", new { username, password = "pw" });
        Assert.Equal(400, response.Status);
        Assert.Equal("M_INVALID_USERNAME", response.Errcode);
        var available = await C.GetAsync($"/_matrix/client/v3/register/available?username={Uri.EscapeDataString(username)}");
        Assert.Equal("M_INVALID_USERNAME", available.Errcode);
    }

    [Fact]
    public async Task Overlong_user_id_is_M_INVALID_USERNAME()
    {
        var response = await C.PostAsync("/_matrix/client/v3/register", new { username = new string('a', 250), password = "pw" });
        Assert.Equal("M_INVALID_USERNAME", response.Errcode);
    }

    [Fact]
    public async Task Available_is_true_for_a_free_name()
    {
        var response = await C.GetAsync($"/_matrix/client/v3/register/available?username={MatrixClient.UniqueName()}");
        Assert.Equal(200, response.Status);
        Assert.True(response.Body!["available"]!.GetValue<bool>());
    }

    [Fact]
    public async Task Upper_case_usernames_are_registered_lower_case()
    {
        var name = MatrixClient.UniqueName("Mixed");
        var user = await C.RegisterAsync(name);
        Assert.Equal($"@{name.ToLowerInvariant()}:{C.ServerName}", user.UserId);
    }

    [Fact]
    public async Task Inhibit_login_returns_only_the_user_id()
    {
        var name = MatrixClient.UniqueName();
        var first = await C.PostAsync("/_matrix/client/v3/register", new { username = name, password = "pw" });
        var done = await C.PostAsync("/_matrix/client/v3/register", new
        {
            username = name, password = "pw", inhibit_login = true, auth = new { type = "m.login.dummy", session = first.Str("session") },
        });
        Assert.Equal(200, done.Status);
        Assert.Equal($"@{name}:{C.ServerName}", done.Str("user_id"));
        Assert.Null(done.Body!["access_token"]);
        Assert.Equal(200, (await C.LoginAsync(name, "pw")).Status);
    }

    [Fact]
    public async Task A_session_remembers_the_request_that_opened_it_and_a_finished_one_replays_as_a_new_login()
    {
        // The request continuing a session with only auth is the one that opened it (the password too, kept hashed).
        var name = MatrixClient.UniqueName();
        var opened = await C.PostAsync("/_matrix/client/v3/register",
            new { username = name, password = "remembered pw", device_id = "XYZZY", initial_device_display_name = "kept", inhibit_login = false });
        Assert.Equal(401, opened.Status);
        var auth = new { auth = new { type = "m.login.dummy", session = opened.Str("session") } };
        var done = await C.PostAsync("/_matrix/client/v3/register", auth);
        Assert.Equal(200, done.Status);
        Assert.Equal($"@{name}:{C.ServerName}", done.Str("user_id"));
        Assert.Equal("XYZZY", done.Str("device_id"));
        Assert.Equal("kept", (await C.GetAsync("/_matrix/client/v3/devices/XYZZY", done.Str("access_token"))).Str("display_name"));
        Assert.Equal(200, (await C.LoginAsync(name, "remembered pw")).Status);

        // Replaying the finished session (a retry after a lost answer) logs the same user in again.
        var replay = await C.PostAsync("/_matrix/client/v3/register", auth);
        Assert.Equal(200, replay.Status);
        Assert.Equal(done.Str("user_id"), replay.Str("user_id"));
        Assert.Equal(200, (await C.GetAsync("/_matrix/client/v3/account/whoami", replay.Str("access_token"))).Status);

        // inhibit_login given when the session opened holds when it finishes.
        var quiet = MatrixClient.UniqueName();
        var openedQuietly = await C.PostAsync("/_matrix/client/v3/register", new { username = quiet, password = "pw", inhibit_login = true });
        var finished = await C.PostAsync("/_matrix/client/v3/register", new { auth = new { type = "m.login.dummy", session = openedQuietly.Str("session") } });
        Assert.Equal($"@{quiet}:{C.ServerName}", finished.Str("user_id"));
        Assert.Null(finished.Body!["device_id"]);
        Assert.Null(finished.Body!["access_token"]);
    }

    [Fact]
    public async Task Guest_registration_is_forbidden()
    {
        var response = await C.PostAsync("/_matrix/client/v3/register?kind=guest", new { });
        Assert.Equal(403, response.Status);
        Assert.Equal("M_GUEST_ACCESS_FORBIDDEN", response.Errcode);
    }

    [Fact]
    public async Task Wrong_field_types_are_M_BAD_JSON()
    {
        var response = await C.PostAsync("/_matrix/client/v3/register", new { username = 42, password = "pw" });
        Assert.Equal("M_BAD_JSON", response.Errcode);
        response = await C.PostAsync("/_matrix/client/v3/register", new { username = MatrixClient.UniqueName(), inhibit_login = "yes" });
        Assert.Equal("M_BAD_JSON", response.Errcode);
    }

    [Fact]
    public async Task Unknown_uia_session_is_rejected()
    {
        var response = await C.PostAsync("/_matrix/client/v3/register", new
        {
            username = MatrixClient.UniqueName(), password = "pw", auth = new { type = "m.login.dummy", session = "no-such-session" },
        });
        Assert.Equal(400, response.Status);
        Assert.NotNull(response.Errcode);
    }

    [Fact]
    public async Task Shared_secret_registration_with_synapse_hmac_creates_an_admin()
    {
        var nonce = (await C.GetAsync("/_synapse/admin/v1/register")).Str("nonce");
        var name = MatrixClient.UniqueName("admin");
        var mac = Mac(nonce, name, "adminpw", "admin");
        var response = await C.PostAsync("/_synapse/admin/v1/register", new { nonce, username = name, password = "adminpw", admin = true, mac });
        Assert.Equal(200, response.Status);
        var token = response.Str("access_token");
        Assert.Equal(200, (await C.GetAsync("/_synapse/admin/v1/registration_tokens", token)).Status);

        var replay = await C.PostAsync("/_synapse/admin/v1/register", new { nonce, username = name + "x", password = "adminpw", admin = true, mac });
        Assert.Equal(400, replay.Status);
    }

    [Fact]
    public async Task Shared_secret_registration_rejects_a_wrong_mac()
    {
        var nonce = (await C.GetAsync("/_synapse/admin/v1/register")).Str("nonce");
        var name = MatrixClient.UniqueName();
        var response = await C.PostAsync("/_synapse/admin/v1/register", new
        {
            nonce, username = name, password = "pw", admin = true, mac = Mac(nonce, name, "pw", "notadmin"),
        });
        Assert.Equal(403, response.Status);
        Assert.Equal("M_FORBIDDEN", response.Errcode);
        Assert.Equal(403, (await C.LoginAsync(name, "pw")).Status);
    }

    [Fact]
    public async Task Admin_token_api_is_only_for_admins()
    {
        var user = await C.RegisterAsync();
        var response = await C.PostAsync("/_synapse/admin/v1/registration_tokens/new", new { }, user.AccessToken);
        Assert.Equal(403, response.Status);
        Assert.Equal("M_FORBIDDEN", response.Errcode);
    }

    internal static string Mac(string nonce, string user, string password, string admin) =>
        Convert.ToHexStringLower(HMACSHA1.HashData(Encoding.UTF8.GetBytes("spec-test-shared-secret-0123456789"),
            Encoding.UTF8.GetBytes($"{nonce}\0{user}\0{password}\0{admin}")));

    internal static async Task<string> CreateAdminAsync(MatrixClient client)
    {
        var nonce = (await client.GetAsync("/_synapse/admin/v1/register")).Str("nonce");
        var name = MatrixClient.UniqueName("admin");
        var response = await client.PostAsync("/_synapse/admin/v1/register",
            new { nonce, username = name, password = "adminpw", admin = true, mac = Mac(nonce, name, "adminpw", "admin") });
        return response.Str("access_token");
    }
}

public sealed class RegistrationTestsSqlite(SqliteServer f) : RegistrationTests(f), IClassFixture<SqliteServer>;
public sealed class RegistrationTestsPostgres(PostgresServer f) : RegistrationTests(f), IClassFixture<PostgresServer>;
