using Matrix.SpecTests.Harness;

namespace Matrix.SpecTests;

/// <summary>
/// Synapse's server notices: an admin's notice reaches a local user from the configured system user, in a private room
/// tagged <c>m.server_notice</c> where the user may not speak; the same room serves the next notice until they leave it.
/// </summary>
public abstract class AdminApiServerNoticeTests(string engine) : IAsyncLifetime
{
    private TestDatabase _database = null!;
    private HomeserverProcess _server = null!;
    private MatrixClient C = null!;
    private const string Send = "/_synapse/admin/v1/send_server_notice";

    public async Task InitializeAsync()
    {
        _database = await TestDatabase.CreateAsync(engine);
        _server = new HomeserverProcess(_database.Yaml, """
            server_notices:
              system_mxid_localpart: notices
              system_mxid_display_name: Company IT
              room_name: IT notices
              room_topic: Messages from the IT department
            """);
        await _server.StartAsync();
        C = new MatrixClient(_server.BaseUrl, _server.ServerName);
    }

    [Fact]
    public async Task A_notice_arrives_by_invite_in_a_tagged_room_where_only_the_system_user_speaks()
    {
        var admin = await RegistrationTests.CreateAdminAsync(C);
        var user = await C.RegisterAsync();
        var system = $"@notices:{C.ServerName}";

        var first = await C.PostAsync(Send, new { user_id = user.UserId, content = new { msgtype = "m.text", body = "Maintenance tonight" } }, admin);
        Assert.Equal(200, first.Status);
        var sync = await C.GetAsync("/_matrix/client/v3/sync", user.AccessToken);
        var (roomId, invite) = Assert.Single(sync.Body!["rooms"]!["invite"]!.AsObject());
        Assert.Contains(invite!["invite_state"]!["events"]!.AsArray(), e => e!["type"]!.GetValue<string>() == "m.room.name"
            && e["content"]!["name"]!.GetValue<string>() == "IT notices");
        Assert.Equal("Company IT", (await C.GetAsync($"/_matrix/client/v3/profile/{Uri.EscapeDataString(system)}/displayname")).Str("displayname"));

        Assert.Equal(200, (await C.PostAsync($"/_matrix/client/v3/join/{RoomTests.R(roomId)}", new { }, user.AccessToken)).Status);
        var tags = await C.GetAsync($"/_matrix/client/v3/user/{Uri.EscapeDataString(user.UserId)}/rooms/{RoomTests.R(roomId)}/tags", user.AccessToken);
        Assert.NotNull(tags.Body!["tags"]!["m.server_notice"]);
        var second = await C.PutAsync($"{Send}/txn1", new { user_id = user.UserId, content = new { msgtype = "m.text", body = "Done" } }, admin);
        Assert.Equal(second.Str("event_id"),
            (await C.PutAsync($"{Send}/txn1", new { user_id = user.UserId, content = new { msgtype = "m.text", body = "Done" } }, admin)).Str("event_id"));
        var messages = await C.GetAsync($"/_matrix/client/v3/rooms/{RoomTests.R(roomId)}/messages?dir=b&limit=50", user.AccessToken);
        var notices = messages.Body!["chunk"]!.AsArray().Where(e => e!["type"]!.GetValue<string>() == "m.room.message").ToList();
        Assert.Equal(["Done", "Maintenance tonight"], notices.Select(e => e!["content"]!["body"]!.GetValue<string>()));
        Assert.All(notices, e => Assert.Equal(system, e!["sender"]!.GetValue<string>()));
        Assert.Equal(first.Str("event_id"), notices[1]!["event_id"]!.GetValue<string>());
        var reply = await C.PutAsync($"/_matrix/client/v3/rooms/{RoomTests.R(roomId)}/send/m.room.message/r1", new { msgtype = "m.text", body = "ok" }, user.AccessToken);
        Assert.Equal(403, reply.Status);

        // Left: the next notice comes in a new room.
        Assert.Equal(200, (await C.PostAsync($"/_matrix/client/v3/rooms/{RoomTests.R(roomId)}/leave", new { }, user.AccessToken)).Status);
        Assert.Equal(200, (await C.PostAsync(Send, new { user_id = user.UserId, content = new { msgtype = "m.text", body = "Again" } }, admin)).Status);
        var invited = (await C.GetAsync("/_matrix/client/v3/sync", user.AccessToken)).Body!["rooms"]!["invite"]!.AsObject();
        Assert.DoesNotContain(roomId, invited.Select(r => r.Key));
        Assert.Single(invited);
    }

    [Fact]
    public async Task Synadm_sends_notices_to_one_user_or_to_every_user_a_pattern_matches()
    {
        Assert.True(SynadmCli.IsInstalled, "synadm is not installed: apt-get install synadm (test.sh does)");
        var admin = await RegistrationTests.CreateAdminAsync(C);
        var adminId = (await C.GetAsync("/_matrix/client/v3/account/whoami", admin)).Str("user_id");
        var tag = MatrixClient.UniqueName("staff").ToLowerInvariant();
        var first = await C.RegisterAsync($"{tag}-a");
        var second = await C.RegisterAsync($"{tag}-b");
        using var synadm = new SynadmCli(_server.BaseUrl, C.ServerName, adminId, admin);

        var one = await synadm.RunListAsync("notice", "send", first.UserId, "Password expiry on Friday");
        Assert.StartsWith("$", Assert.Single(one)!["event_id"]!.GetValue<string>());
        var many = await synadm.RunListAsync("notice", "send", "--regex", $"@{tag}-.*", "Office closed on Monday");
        Assert.Equal(2, many.Count);
        foreach (var user in new[] { first, second })
            Assert.Single((await C.GetAsync("/_matrix/client/v3/sync", user.AccessToken)).Body!["rooms"]!["invite"]!.AsObject());
    }

    [Fact]
    public async Task Notices_are_for_admins_to_send_to_existing_local_users()
    {
        var admin = await RegistrationTests.CreateAdminAsync(C);
        var user = await C.RegisterAsync();
        var body = new { user_id = user.UserId, content = new { msgtype = "m.text", body = "hi" } };
        Assert.Equal(403, (await C.PostAsync(Send, body, user.AccessToken)).Status);
        Assert.Equal("M_INVALID_PARAM", (await C.PostAsync(Send, new { user_id = "@x:elsewhere.example", content = new { body = "hi" } }, admin)).Errcode);
        Assert.Equal("M_NOT_FOUND", (await C.PostAsync(Send, new { user_id = $"@nobody{Guid.NewGuid():N}:{C.ServerName}", content = new { body = "hi" } }, admin)).Errcode);
        Assert.Equal("M_MISSING_PARAM", (await C.PostAsync(Send, new { user_id = user.UserId }, admin)).Errcode);
        Assert.Equal("M_BAD_JSON", (await C.PostAsync(Send, new { user_id = user.UserId, content = "hi" }, admin)).Errcode);
        Assert.Empty((await C.GetAsync("/_matrix/client/v3/sync", user.AccessToken)).Body!["rooms"]?["invite"]?.AsObject() ?? []);
    }

    public async Task DisposeAsync()
    {
        await _server.DisposeAsync();
        await _database.DisposeAsync();
    }
}

public sealed class AdminApiServerNoticeTestsSqlite() : AdminApiServerNoticeTests("sqlite");
public sealed class AdminApiServerNoticeTestsPostgres() : AdminApiServerNoticeTests("postgres");
