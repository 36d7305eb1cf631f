using System.Text.Json.Nodes;
using Matrix.SpecTests.Harness;

namespace Matrix.SpecTests;

/// <summary>Spec: client-server API, "Account registration and management" (password change, deactivation).</summary>
public abstract class AccountManagementTests(ServerFixture fixture)
{
    private MatrixClient C => fixture.Client;

    [Fact]
    public async Task Password_change_needs_uia_and_logs_out_other_devices()
    {
        var user = await C.RegisterAsync();
        var other = await C.LoginAsync(user.Localpart, user.Password);

        var noAuth = await C.PostAsync("/_matrix/client/v3/account/password", new { new_password = "new secret" }, user.AccessToken);
        Assert.Equal(401, noAuth.Status);
        Assert.NotNull(noAuth.Body!["flows"]);
        Assert.Equal(200, (await C.LoginAsync(user.Localpart, user.Password)).Status);

        var done = await C.WithPasswordAuthAsync(HttpMethod.Post, "/_matrix/client/v3/account/password",
            new JsonObject { ["new_password"] = "new secret" }, user);
        Assert.Equal(200, done.Status);
        Assert.Equal(403, (await C.LoginAsync(user.Localpart, user.Password)).Status);
        Assert.Equal(200, (await C.LoginAsync(user.Localpart, "new secret")).Status);
        Assert.Equal(200, (await C.GetAsync("/_matrix/client/v3/account/whoami", user.AccessToken)).Status);
        Assert.Equal(401, (await C.GetAsync("/_matrix/client/v3/account/whoami", other.Str("access_token"))).Status);
    }

    [Fact]
    public async Task Password_change_can_keep_other_devices()
    {
        var user = await C.RegisterAsync();
        var other = await C.LoginAsync(user.Localpart, user.Password);
        var done = await C.WithPasswordAuthAsync(HttpMethod.Post, "/_matrix/client/v3/account/password",
            new JsonObject { ["new_password"] = "kept", ["logout_devices"] = false }, user);
        Assert.Equal(200, done.Status);
        Assert.Equal(200, (await C.GetAsync("/_matrix/client/v3/account/whoami", other.Str("access_token"))).Status);
    }

    [Fact]
    public async Task Password_change_validates_its_input()
    {
        var user = await C.RegisterAsync();
        Assert.Equal("M_MISSING_PARAM", (await C.PostAsync("/_matrix/client/v3/account/password", new { }, user.AccessToken)).Errcode);
        Assert.Equal("M_BAD_JSON", (await C.PostAsync("/_matrix/client/v3/account/password", new { new_password = 1 }, user.AccessToken)).Errcode);
        Assert.Equal(401, (await C.PostAsync("/_matrix/client/v3/account/password", new { new_password = "x" })).Status);
    }

    [Fact]
    public async Task Deactivation_needs_uia_and_ends_the_account_for_good()
    {
        var user = await C.RegisterAsync();
        var host = await C.RegisterAsync();
        var roomId = await RoomTests.CreateRoomAsync(C, host, new { preset = "public_chat" });
        await C.PostAsync($"/_matrix/client/v3/rooms/{Uri.EscapeDataString(roomId)}/join", new { }, user.AccessToken);
        await C.PutAsync($"/_matrix/client/v3/user/{user.UserId}/account_data/org.example.x", new { a = 1 }, user.AccessToken);
        var done = await C.WithPasswordAuthAsync(HttpMethod.Post, "/_matrix/client/v3/account/deactivate", new JsonObject(), user);
        Assert.Equal(200, done.Status);
        // The account leaves its rooms, as Synapse's deactivation does.
        var members = await C.GetAsync($"/_matrix/client/v3/rooms/{Uri.EscapeDataString(roomId)}/joined_members", host.AccessToken);
        Assert.False(members.Body!["joined"]!.AsObject().ContainsKey(user.UserId));
        // Nothing was bound anywhere, so everything (nothing) was unbound: "success", as Synapse answers.
        Assert.Equal("success", done.Str("id_server_unbind_result"));

        Assert.Equal(401, (await C.GetAsync("/_matrix/client/v3/account/whoami", user.AccessToken)).Status);
        Assert.Equal(403, (await C.LoginAsync(user.Localpart, user.Password)).Status);
        var again = await C.PostAsync("/_matrix/client/v3/register", new { username = user.Localpart, password = "pw" });
        Assert.Equal("M_USER_IN_USE", again.Errcode);
    }
}

public sealed class AccountManagementTestsSqlite(SqliteServer f) : AccountManagementTests(f), IClassFixture<SqliteServer>;
public sealed class AccountManagementTestsPostgres(PostgresServer f) : AccountManagementTests(f), IClassFixture<PostgresServer>;
