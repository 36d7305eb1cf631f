using System.Text.Json.Nodes;
using Matrix.SpecTests.Harness;

namespace Matrix.SpecTests;

/// <summary>
/// The admin API as an operator uses it: Debian's synadm (0.38) runs its everyday user, room (including make_admin and
/// delete), history (purge, purge-status), media (list, protect, quarantine, delete, purge), regtok and version commands.
/// </summary>
public abstract class AdminApiSynadmTests(ServerFixture fixture)
{
    private MatrixClient C => fixture.Client;

    [Fact]
    public async Task Synadm_manages_users_rooms_and_registration_tokens()
    {
        Assert.True(SynadmCli.IsInstalled, "synadm is not installed: apt-get install synadm (test.sh does)");
        var adminToken = await RegistrationTests.CreateAdminAsync(C);
        var adminId = (await C.GetAsync("/_matrix/client/v3/account/whoami", adminToken)).Str("user_id");
        using var synadm = new SynadmCli(fixture.Server.BaseUrl, C.ServerName, adminId, adminToken);

        Assert.False(string.IsNullOrEmpty((await synadm.RunAsync("version"))["server_version"]?.GetValue<string>()));

        var localpart = MatrixClient.UniqueName("ops");
        var userId = $"@{localpart}:{C.ServerName}";
        var created = await synadm.RunAsync("user", "modify", userId, "-P", "first password", "-n", "Operator", "-t", "email", $"{localpart}@example.org");
        Assert.Equal("Operator", created["displayname"]!.GetValue<string>());
        Assert.Single(created["threepids"]!.AsArray());
        Assert.Equal(userId, (await synadm.RunAsync("user", "details", userId))["name"]!.GetValue<string>());
        Assert.Contains((await synadm.RunAsync("user", "list", "-n", localpart))["users"]!.AsArray(), u => u!["name"]!.GetValue<string>() == userId);
        Assert.Empty((await synadm.RunAsync("user", "password", userId, "-p", "second password")).AsObject());
        var user = await C.LoginAsync(userId, "second password");
        Assert.Equal(200, user.Status);
        Assert.Contains(user.Str("device_id"), (await synadm.RunAsync("user", "whois", userId))["devices"]!.AsObject().Select(d => d.Key));

        var roomId = await RoomTests.CreateRoomAsync(C, new LoggedInUser(userId, user.Str("access_token"), user.Str("device_id"), "", localpart),
            new { name = $"Room of {localpart}" });
        Assert.Equal([roomId], (await synadm.RunAsync("user", "membership", userId))["joined_rooms"]!.AsArray().Select(r => r!.GetValue<string>()));
        Assert.Equal([roomId], RoomIds(await synadm.RunAsync("room", "list", "-n", localpart)));
        Assert.Equal([roomId], RoomIds(await synadm.RunAsync("room", "search", localpart)));
        Assert.Equal($"Room of {localpart}", (await synadm.RunAsync("room", "details", roomId))["name"]!.GetValue<string>());
        Assert.Equal([userId], (await synadm.RunAsync("room", "members", roomId))["members"]!.AsArray().Select(m => m!.GetValue<string>()));
        Assert.Contains((await synadm.RunAsync("room", "state", roomId))["state"]!.AsArray(), e => e!["type"]!.GetValue<string>() == "m.room.name");
        var purgeId = (await synadm.RunAsync("history", "purge", roomId, "--before-ts", DateTimeOffset.UtcNow.ToUnixTimeMilliseconds().ToString(),
            "--delete-local"))["purge_id"]!.GetValue<string>();
        Assert.Contains((await synadm.RunAsync("history", "purge-status", purgeId))["status"]!.GetValue<string>(), new[] { "active", "complete" });

        var upload = await new MediaClient(fixture.Server.BaseUrl).UploadAsync(new byte[5], "text/plain", user.Str("access_token"), "notes.txt");
        var mediaId = upload.Str("content_uri").Split('/')[^1];
        Assert.Equal([mediaId], (await synadm.RunAsync("media", "list", "-u", userId))["media"]!.AsArray().Select(m => m!["media_id"]!.GetValue<string>()));
        var kept = (await new MediaClient(fixture.Server.BaseUrl).UploadAsync(new byte[7], "text/plain", user.Str("access_token"), "kept.txt"))
            .Str("content_uri").Split('/')[^1];
        Assert.Empty((await synadm.RunAsync("media", "protect", kept)).AsObject());
        Assert.Empty((await synadm.RunAsync("media", "quarantine", "-s", C.ServerName, "-i", mediaId)).AsObject());
        Assert.Equal(0, (await synadm.RunAsync("media", "quarantine", "-u", userId))["num_quarantined"]!.GetValue<int>());
        Assert.NotNull((await C.GetAsync($"/_synapse/admin/v1/media/{C.ServerName}/{mediaId}", adminToken)).Body!["media_info"]!["quarantined_by"]);
        Assert.Equal([mediaId], (await synadm.RunAsync("media", "delete", "-i", mediaId))["deleted_media"]!.AsArray().Select(m => m!.GetValue<string>()));
        Assert.Equal(0, (await synadm.RunAsync("media", "purge", "-t", DateTimeOffset.UtcNow.ToUnixTimeMilliseconds().ToString()))["deleted"]!.GetValue<int>());

        var scratch = await RoomTests.CreateRoomAsync(C, new LoggedInUser(userId, user.Str("access_token"), user.Str("device_id"), "", localpart),
            new { preset = "private_chat" });
        Assert.Empty((await synadm.RunAsync("room", "make-admin", scratch)).AsObject());
        Assert.Equal([userId], (await synadm.RunAsync("room", "delete", scratch, "--block"))["kicked_users"]!.AsArray().Select(u => u!.GetValue<string>()));
        Assert.True((await C.GetAsync($"/_synapse/admin/v1/rooms/{RoomTests.R(scratch)}/block", adminToken)).Body!["block"]!.GetValue<bool>());

        var token = (await synadm.RunAsync("regtok", "new", "-l", "12"))["token"]!.GetValue<string>();
        Assert.Contains((await synadm.RunAsync("regtok", "list"))["registration_tokens"]!.AsArray(), t => t!["token"]!.GetValue<string>() == token);

        Assert.Equal("success", (await synadm.RunAsync("user", "deactivate", userId, "--gdpr-erase"))["id_server_unbind_result"]!.GetValue<string>());
        var erased = await synadm.RunAsync("user", "details", userId);
        Assert.True(erased["deactivated"]!.GetValue<bool>());
        Assert.True(erased["erased"]!.GetValue<bool>());
        Assert.Empty((await synadm.RunAsync("room", "members", roomId))["members"]!.AsArray());
    }

    private static List<string> RoomIds(JsonObject list) => list["rooms"]!.AsArray().Select(r => r!["room_id"]!.GetValue<string>()).ToList();
}

public sealed class AdminApiSynadmTestsSqlite(SqliteServer f) : AdminApiSynadmTests(f), IClassFixture<SqliteServer>;
public sealed class AdminApiSynadmTestsPostgres(PostgresServer f) : AdminApiSynadmTests(f), IClassFixture<PostgresServer>;
