using System.Text.Json.Nodes;
using Matrix.SpecTests.Harness;

namespace Matrix.SpecTests;

/// <summary>Spec: client-server API, "Device management".</summary>
public abstract class DeviceManagementTests(ServerFixture fixture)
{
    private MatrixClient C => fixture.Client;

    [Fact]
    public async Task List_get_and_rename_devices()
    {
        var user = await C.RegisterAsync(deviceId: "DESKTOP");
        var list = await C.GetAsync("/_matrix/client/v3/devices", user.AccessToken);
        var device = Assert.Single(list.Body!["devices"]!.AsArray());
        Assert.Equal("DESKTOP", device!["device_id"]!.GetValue<string>());
        Assert.NotNull(device["last_seen_ts"]);

        Assert.Equal(200, (await C.PutAsync("/_matrix/client/v3/devices/DESKTOP", new { display_name = "Work desktop" }, user.AccessToken)).Status);
        var got = await C.GetAsync("/_matrix/client/v3/devices/DESKTOP", user.AccessToken);
        Assert.Equal("Work desktop", got.Str("display_name"));
    }

    [Fact]
    public async Task Unknown_device_is_404_and_other_users_devices_are_invisible()
    {
        var alice = await C.RegisterAsync(deviceId: "ALICEDEV");
        var bob = await C.RegisterAsync();
        Assert.Equal("M_NOT_FOUND", (await C.GetAsync("/_matrix/client/v3/devices/NOPE", alice.AccessToken)).Errcode);
        Assert.Equal(404, (await C.GetAsync("/_matrix/client/v3/devices/ALICEDEV", bob.AccessToken)).Status);
        Assert.Equal(404, (await C.PutAsync("/_matrix/client/v3/devices/ALICEDEV", new { display_name = "pwned" }, bob.AccessToken)).Status);
        Assert.Equal(400, (await C.PutAsync("/_matrix/client/v3/devices/ALICEDEV", new { display_name = 7 }, alice.AccessToken)).Status);
    }

    [Fact]
    public async Task Deleting_a_device_needs_the_password_and_revokes_its_token()
    {
        var user = await C.RegisterAsync();
        var phone = await C.LoginAsync(user.Localpart, user.Password, new { device_id = "PHONE" });

        var challenge = await C.DeleteAsync("/_matrix/client/v3/devices/PHONE", null, user.AccessToken);
        Assert.Equal(401, challenge.Status);
        Assert.Equal("m.login.password", challenge.Body!["flows"]![0]!["stages"]![0]!.GetValue<string>());

        var wrong = await C.DeleteAsync("/_matrix/client/v3/devices/PHONE", new
        {
            auth = MatrixClient.PasswordAuth(challenge.Str("session"), user.UserId, "wrong"),
        }, user.AccessToken);
        Assert.Equal(401, wrong.Status);
        Assert.Equal("M_FORBIDDEN", wrong.Errcode);
        Assert.Equal(200, (await C.GetAsync("/_matrix/client/v3/account/whoami", phone.Str("access_token"))).Status);

        var done = await C.WithPasswordAuthAsync(HttpMethod.Delete, "/_matrix/client/v3/devices/PHONE", new JsonObject(), user);
        Assert.Equal(200, done.Status);
        Assert.Equal(401, (await C.GetAsync("/_matrix/client/v3/account/whoami", phone.Str("access_token"))).Status);
        Assert.Equal(404, (await C.GetAsync("/_matrix/client/v3/devices/PHONE", user.AccessToken)).Status);
    }

    [Fact]
    public async Task Password_stage_must_prove_the_requesting_user()
    {
        var alice = await C.RegisterAsync();
        var mallory = await C.RegisterAsync();
        var challenge = await C.DeleteAsync($"/_matrix/client/v3/devices/{alice.DeviceId}", null, alice.AccessToken);
        var impersonation = await C.DeleteAsync($"/_matrix/client/v3/devices/{alice.DeviceId}", new
        {
            auth = MatrixClient.PasswordAuth(challenge.Str("session"), mallory.UserId, mallory.Password),
        }, alice.AccessToken);
        // Proving to be someone else is refused outright (403, as Synapse and SyTest expect).
        Assert.Equal(403, impersonation.Status);
        Assert.Equal("M_FORBIDDEN", impersonation.Errcode);
        Assert.Equal(200, (await C.GetAsync("/_matrix/client/v3/account/whoami", alice.AccessToken)).Status);
    }

    [Fact]
    public async Task Uia_session_cannot_be_moved_to_another_operation()
    {
        var user = await C.RegisterAsync();
        var challenge = await C.DeleteAsync($"/_matrix/client/v3/devices/{user.DeviceId}", null, user.AccessToken);
        var moved = await C.PostAsync("/_matrix/client/v3/delete_devices", new
        {
            devices = new[] { user.DeviceId },
            auth = MatrixClient.PasswordAuth(challenge.Str("session"), user.UserId, user.Password),
        }, user.AccessToken);
        Assert.Equal(403, moved.Status);
        Assert.Equal(200, (await C.GetAsync("/_matrix/client/v3/account/whoami", user.AccessToken)).Status);
    }

    [Fact]
    public async Task Delete_devices_removes_several_at_once()
    {
        var user = await C.RegisterAsync();
        var a = await C.LoginAsync(user.Localpart, user.Password, new { device_id = "A" });
        var b = await C.LoginAsync(user.Localpart, user.Password, new { device_id = "B" });
        var body = new JsonObject { ["devices"] = new JsonArray("A", "B") };
        Assert.Equal(200, (await C.WithPasswordAuthAsync(HttpMethod.Post, "/_matrix/client/v3/delete_devices", body, user)).Status);
        Assert.Equal(401, (await C.GetAsync("/_matrix/client/v3/account/whoami", a.Str("access_token"))).Status);
        Assert.Equal(401, (await C.GetAsync("/_matrix/client/v3/account/whoami", b.Str("access_token"))).Status);
        var list = await C.GetAsync("/_matrix/client/v3/devices", user.AccessToken);
        Assert.Single(list.Body!["devices"]!.AsArray());
        Assert.Equal("M_MISSING_PARAM", (await C.PostAsync("/_matrix/client/v3/delete_devices", new { }, user.AccessToken)).Errcode);
    }
}

public sealed class DeviceManagementTestsSqlite(SqliteServer f) : DeviceManagementTests(f), IClassFixture<SqliteServer>;
public sealed class DeviceManagementTestsPostgres(PostgresServer f) : DeviceManagementTests(f), IClassFixture<PostgresServer>;
