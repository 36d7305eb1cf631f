using System.Text.Json.Nodes;
using Matrix.AppServices.Sdk;
using Matrix.Bridges.Ldap;
using Matrix.SpecTests.Harness;

namespace Matrix.SpecTests;

/// <summary>
/// The directory-sync bridge (src/Bridges/Ldap) against a real slapd and a real homeserver: users created with their
/// directory names, groups (nested ones expanded) reconciled into rooms with power levels per group, one space per
/// department; a second run changes nothing; a dry run only lists; changes in the directory (new member, member
/// removed, renamed, disabled, deleted) become the minimal changes on the server; an unreachable directory changes
/// nothing and reports an error.
/// </summary>
public sealed class LdapSyncBridgeTests : IAsyncLifetime
{
    private readonly string _dir = Directory.CreateTempSubdirectory("hs-ldapsync-").FullName;
    private TestLdapServer _ldap = null!;
    private TestDatabase _database = null!;
    private HomeserverProcess _server = null!;
    private BridgeRuntime _bridge = null!;
    private LdapSyncConfig _config = null!;
    private Reconciler _reconciler = null!;
    private MatrixClient C => new(_server.BaseUrl, _server.ServerName);

    public async Task InitializeAsync()
    {
        _ldap = await TestLdapServer.StartAsync();
        _database = await TestDatabase.CreateAsync("sqlite");
        var registration = Path.Combine(_dir, "ldap-registration.yaml");
        _server = new HomeserverProcess(_database.Yaml, $"""
            app_service_config_files:
              - {registration}

            ldap:
              enabled: true
              uri: {_ldap.Uri}
              base_dn: {TestLdapServer.PeopleDn}
              bind_dn: {TestLdapServer.ReaderDn}
              bind_password: {TestLdapServer.ReaderPassword}
              disabled_filter: "(employeeType=disabled)"
            """);
        var configPath = Path.Combine(_dir, "ldap-bridge.yaml");
        await File.WriteAllTextAsync(configPath, $"""
            homeserver:
              url: {_server.BaseUrl}
              server_name: {_server.ServerName}
            appservice:
              id: ldap-sync
              port: 0
              registration: ldap-registration.yaml
              data_dir: ./data
              sender_localpart: ldapsync
            directory:
              uri: {_ldap.Uri}
              bind_dn: {TestLdapServer.ReaderDn}
              bind_password: {TestLdapServer.ReaderPassword}
              user_base_dn: {TestLdapServer.PeopleDn}
              disabled_filter: "(employeeType=disabled)"
              group_base_dn: {TestLdapServer.GroupsDn}
              page_size: 2
              timeout_ms: 30000
              change_attribute: entryCSN
            groups:
              - {"{"} group: "cn=engineering,{TestLdapServer.GroupsDn}", alias: engineering, name: Engineering {"}"}
              - {"{"} group: "cn=platform,{TestLdapServer.GroupsDn}", alias: engineering, power_level: 50 {"}"}
              - {"{"} group: "cn=sales,{TestLdapServer.GroupsDn}", alias: sales, name: Sales {"}"}
            departments:
              enabled: true
            """);
        _config = BridgeConfig.Load<LdapSyncConfig>(configPath);
        BridgeRuntime.WriteRegistration(_config);
        await _server.StartAsync();
        _bridge = BridgeRuntime.Create(_config);
        _reconciler = new Reconciler(_config, _bridge.AppService, new DirectoryReader(_config.Directory));
    }

    private string U(string localpart) => $"@{localpart}:{_server.ServerName}";

    private async Task<SyncReport> RunAsync(bool dryRun = false)
    {
        var report = await _reconciler.RunAsync(dryRun, CancellationToken.None);
        if (!dryRun)
            Assert.True(report.Errors.Count == 0, string.Join("\n", report.Errors));
        return report;
    }

    private async Task<Dictionary<string, string>> MembershipsAsync(string alias) =>
        await _bridge.AppService.Bot.MembershipsAsync((await _bridge.AppService.Bot.ResolveAliasAsync($"#{alias}:{_server.ServerName}"))!);

    private async Task<string?> DisplayNameAsync(string localpart) =>
        (await C.GetAsync($"/_matrix/client/v3/profile/{Uri.EscapeDataString(U(localpart))}/displayname")).Body?["displayname"]?.GetValue<string>();

    [Fact]
    public async Task The_directory_is_reconciled_into_users_rooms_and_spaces_with_minimal_changes()
    {
        var first = await RunAsync();
        Assert.Equal(3, first.Count(SyncActionKind.CreateUser));
        Assert.Equal("Alice Liddell", await DisplayNameAsync("alice"));
        Assert.Null(await DisplayNameAsync("dave"));
        var engineering = await MembershipsAsync("engineering");
        Assert.Equal("join", engineering[U("alice")]);
        Assert.Equal("join", engineering[U("bob")]);
        Assert.False(engineering.ContainsKey(U("carol")));
        var roomId = (await _bridge.AppService.Bot.ResolveAliasAsync($"#engineering:{_server.ServerName}"))!;
        var levels = (await _bridge.AppService.Bot.GetStateAsync(roomId, "m.room.power_levels", ""))!["users"]!;
        Assert.Equal(50, levels[U("bob")]!.GetValue<int>());
        Assert.Null(levels[U("alice")]);
        Assert.Equal("join", (await MembershipsAsync("sales"))[U("carol")]);
        Assert.Equal("join", (await MembershipsAsync("department-engineering"))[U("alice")]);
        var spaceId = (await _bridge.AppService.Bot.ResolveAliasAsync($"#department-sales:{_server.ServerName}"))!;
        Assert.Equal("m.space", (await _bridge.AppService.Bot.GetStateAsync(spaceId, "m.room.create", ""))!["type"]!.GetValue<string>());

        var second = await RunAsync();
        Assert.True(second.Actions.Count == 0, string.Join("\n", second.Actions));

        // A new member of a nested group: the dry run lists the changes and makes none.
        await _ldap.ModifyAsync(TestLdapServer.Person("erin", "Erin Example", "erin password"), add: true);
        await _ldap.ModifyAsync($"dn: cn=platform,{TestLdapServer.GroupsDn}\nchangetype: modify\nadd: member\nmember: uid=erin,{TestLdapServer.PeopleDn}\n");
        var dry = await RunAsync(dryRun: true);
        Assert.Contains(dry.Actions, a => a.Kind == SyncActionKind.CreateUser && a.UserId == U("erin"));
        Assert.Contains(dry.Actions, a => a.Kind == SyncActionKind.Join && a.UserId == U("erin") && a.Room == "engineering");
        Assert.Null(await DisplayNameAsync("erin"));
        await RunAsync();
        Assert.Equal("join", (await MembershipsAsync("engineering"))[U("erin")]);

        // Carol logs in with her directory password, then is disabled; alice leaves the group; bob is renamed.
        var carol = await C.LoginAsync("carol", "carol password");
        Assert.Equal(200, carol.Status);
        await _ldap.ModifyAsync($"dn: uid=carol,{TestLdapServer.PeopleDn}\nchangetype: modify\nadd: employeeType\nemployeeType: disabled\n");
        await _ldap.ModifyAsync($"dn: cn=engineering,{TestLdapServer.GroupsDn}\nchangetype: modify\ndelete: member\nmember: uid=alice,{TestLdapServer.PeopleDn}\n");
        await _ldap.ModifyAsync($"dn: uid=bob,{TestLdapServer.PeopleDn}\nchangetype: modify\nreplace: cn\ncn: Robert Builder\n");
        var changes = await RunAsync();
        Assert.Equal("Robert Builder", await DisplayNameAsync("bob"));
        Assert.Equal("leave", (await MembershipsAsync("engineering"))[U("alice")]);
        Assert.Equal("leave", (await MembershipsAsync("sales"))[U("carol")]);
        Assert.Equal(1, changes.Count(SyncActionKind.DeactivateUser));
        Assert.Equal(401, (await C.GetAsync("/_matrix/client/v3/account/whoami", carol.Str("access_token"))).Status);
        Assert.Equal(403, (await C.LoginAsync("carol", "carol password")).Status);

        // Deleted from the directory: deactivated.
        await _ldap.ModifyAsync($"dn: cn=platform,{TestLdapServer.GroupsDn}\nchangetype: modify\ndelete: member\nmember: uid=erin,{TestLdapServer.PeopleDn}\n\n" +
            $"dn: uid=erin,{TestLdapServer.PeopleDn}\nchangetype: delete\n");
        Assert.Contains((await RunAsync()).Actions, a => a.Kind == SyncActionKind.DeactivateUser && a.UserId == U("erin"));

        // The directory down: an error, and nothing changes.
        var before = await MembershipsAsync("engineering");
        await _ldap.StopAsync();
        try
        {
            var failed = await _reconciler.RunAsync(dryRun: false, CancellationToken.None);
            Assert.NotEmpty(failed.Errors);
            Assert.Empty(failed.Actions);
            Assert.Equal(before, await MembershipsAsync("engineering"));
        }
        finally
        {
            await _ldap.StartAgainAsync();
        }
        Assert.Empty((await RunAsync()).Actions);
    }

    [Fact]
    public async Task Directory_photos_become_avatars_and_periodic_runs_skip_an_unchanged_directory()
    {
        var photo = TestImages.Png(48, 48);
        await _ldap.ModifyAsync($"dn: uid=alice,{TestLdapServer.PeopleDn}\nchangetype: modify\nadd: jpegPhoto\njpegPhoto:: {Convert.ToBase64String(photo)}\n");
        var first = await RunAsync();
        Assert.Equal(U("alice"), Assert.Single(first.Actions, a => a.Kind == SyncActionKind.SetAvatar).UserId);
        var viewer = await C.RegisterAsync();
        Assert.Equal(photo, await AvatarAsync("alice", viewer.AccessToken));
        Assert.Null(await AvatarAsync("bob", viewer.AccessToken));

        // Nothing changed: a periodic run is skipped without comparing; a full run finds nothing either.
        var skipped = await _reconciler.RunIfChangedAsync(CancellationToken.None);
        Assert.True(skipped.Skipped);
        Assert.Empty(skipped.Actions);
        Assert.Empty((await RunAsync()).Actions);

        // A new photo and a rename: the periodic run notices and applies both.
        var newPhoto = TestImages.Png(64, 64);
        await _ldap.ModifyAsync($"dn: uid=alice,{TestLdapServer.PeopleDn}\nchangetype: modify\nreplace: jpegPhoto\njpegPhoto:: {Convert.ToBase64String(newPhoto)}\n");
        await _ldap.ModifyAsync($"dn: uid=bob,{TestLdapServer.PeopleDn}\nchangetype: modify\nreplace: cn\ncn: Bobby Tables\n");
        var changed = await _reconciler.RunIfChangedAsync(CancellationToken.None);
        Assert.False(changed.Skipped);
        Assert.Empty(changed.Errors);
        Assert.Contains(changed.Actions, a => a.Kind == SyncActionKind.SetAvatar && a.UserId == U("alice"));
        Assert.Contains(changed.Actions, a => a.Kind == SyncActionKind.UpdateDisplayName && a.UserId == U("bob"));
        Assert.Equal(newPhoto, await AvatarAsync("alice", viewer.AccessToken));
        Assert.Equal("Bobby Tables", await DisplayNameAsync("bob"));

        // The photo removed from the directory: the avatar goes too.
        await _ldap.ModifyAsync($"dn: uid=alice,{TestLdapServer.PeopleDn}\nchangetype: modify\ndelete: jpegPhoto\n");
        var removed = await _reconciler.RunIfChangedAsync(CancellationToken.None);
        Assert.Contains(removed.Actions, a => a.Kind == SyncActionKind.RemoveAvatar && a.UserId == U("alice"));
        Assert.Null(await AvatarAsync("alice", viewer.AccessToken));

        // A change made on the homeserver alone is not seen by a skipped run; the next full run repairs it.
        var engineering = (await _bridge.AppService.Bot.ResolveAliasAsync($"#engineering:{_server.ServerName}"))!;
        await _bridge.AppService.Bot.KickAsync(engineering, U("bob"), "by hand");
        Assert.True((await _reconciler.RunIfChangedAsync(CancellationToken.None)).Skipped);
        Assert.Contains((await RunAsync()).Actions, a => a.Kind == SyncActionKind.Join && a.UserId == U("bob"));
    }

    [Fact]
    public void The_homeserver_logs_at_start_up_its_application_services_and_whether_LDAP_login_is_on()
    {
        Assert.Contains("Application services loaded: 1; ldap-sync (sender @ldapsync:", _server.Output);
        Assert.Contains($"LDAP login: on, directory {_ldap.Uri}", _server.Output);
    }

    [Fact]
    public async Task Spaces_hold_the_rooms_of_their_people_are_closed_to_guests_and_the_dry_run_names_them()
    {
        var dry = await RunAsync(dryRun: true);
        Assert.Contains(dry.Actions, a => a.Kind == SyncActionKind.CreateSpace && a.Room == "department-sales" && a.ToString().Contains("space"));
        Assert.Contains(dry.Actions, a => a.Kind == SyncActionKind.CreateRoom && a.Room == "sales");
        Assert.Contains(dry.Actions, a => a.Kind == SyncActionKind.LinkSpaceChild && a.Room == "department-sales" && a.Value == "sales");

        await RunAsync();
        var bot = _bridge.AppService.Bot;
        async Task<string> IdOf(string alias) => (await bot.ResolveAliasAsync($"#{alias}:{_server.ServerName}"))!;
        var (space, engineering, sales) = (await IdOf("department-engineering"), await IdOf("engineering"), await IdOf("sales"));
        Assert.NotNull((await bot.GetStateAsync(space, "m.space.child", engineering))?["via"]);
        Assert.NotNull((await bot.GetStateAsync(engineering, "m.space.parent", space))?["via"]);
        Assert.Null(await bot.GetStateAsync(space, "m.space.child", sales));
        Assert.Equal("forbidden", (await bot.GetStateAsync(space, "m.room.guest_access", ""))!["guest_access"]!.GetValue<string>());
        Assert.Empty((await RunAsync()).Actions);
    }

    [Fact]
    public async Task A_person_disabled_then_enabled_again_comes_back_reactivated_with_their_name_rooms_and_login()
    {
        await RunAsync();
        await _ldap.ModifyAsync($"dn: uid=carol,{TestLdapServer.PeopleDn}\nchangetype: modify\nadd: employeeType\nemployeeType: disabled\n");
        Assert.Contains((await RunAsync()).Actions, a => a.Kind == SyncActionKind.DeactivateUser && a.UserId == U("carol"));
        Assert.Equal(403, (await C.LoginAsync("carol", "carol password")).Status);

        await _ldap.ModifyAsync($"dn: uid=carol,{TestLdapServer.PeopleDn}\nchangetype: modify\ndelete: employeeType\n");
        var back = await RunAsync();
        Assert.Contains(back.Actions, a => a.Kind == SyncActionKind.CreateUser && a.UserId == U("carol"));
        Assert.Equal("Carol Danvers", await DisplayNameAsync("carol"));
        Assert.Equal("join", (await MembershipsAsync("sales"))[U("carol")]);
        Assert.Equal(200, (await C.LoginAsync("carol", "carol password")).Status);
        Assert.Empty((await RunAsync()).Actions);
    }

    [Fact]
    public async Task An_application_service_may_reactivate_its_users_through_the_admin_api_but_change_nothing_else()
    {
        await RunAsync();
        var asToken = _bridge.AppService.Registration.AsToken;
        var path = $"/_synapse/admin/v2/users/{Uri.EscapeDataString(U("carol"))}";
        Assert.Equal(403, (await C.PutAsync(path, new { deactivated = false, admin = true }, asToken)).Status);
        Assert.Equal(403, (await C.PutAsync(path, new { displayname = "Mallory" }, asToken)).Status);
        Assert.Equal(404, (await C.PutAsync($"/_synapse/admin/v2/users/{Uri.EscapeDataString(U("nobody"))}", new { deactivated = false }, asToken)).Status);
        var someone = await C.RegisterAsync();
        Assert.Equal(403, (await C.PutAsync(path, new { deactivated = false }, someone.AccessToken)).Status);
        Assert.Equal(200, (await C.PutAsync(path, new { deactivated = false }, asToken)).Status);
    }

    [Fact]
    public async Task A_mapped_alias_naming_a_room_the_bot_is_not_in_is_reported_by_name_and_adopted_once_the_bot_is_invited()
    {
        var owner = await C.RegisterAsync();
        var created = await C.PostAsync("/_matrix/client/v3/createRoom", new { room_alias_name = "sales", preset = "private_chat" }, owner.AccessToken);
        var salesId = created.Str("room_id");

        var blocked = await _reconciler.RunAsync(dryRun: false, CancellationToken.None);
        var error = Assert.Single(blocked.Errors);
        Assert.True(error.Contains($"#sales:{_server.ServerName}") && error.Contains($"cn=sales,{TestLdapServer.GroupsDn}"), error);
        Assert.Equal("join", (await MembershipsAsync("engineering"))[U("alice")]);
        Assert.Equal(3, blocked.Count(SyncActionKind.CreateUser));

        // Invited with enough power, the bot adopts the room and the alias at the next run.
        var bot = _bridge.AppService.Bot.UserId;
        Assert.Equal(200, (await C.PostAsync($"/_matrix/client/v3/rooms/{salesId}/invite", new { user_id = bot }, owner.AccessToken)).Status);
        var levels = (await C.GetAsync($"/_matrix/client/v3/rooms/{salesId}/state/m.room.power_levels/", owner.AccessToken)).Body!.AsObject();
        levels["users"]![bot] = 100;
        Assert.Equal(200, (await C.PutAsync($"/_matrix/client/v3/rooms/{salesId}/state/m.room.power_levels/", levels, owner.AccessToken)).Status);
        await RunAsync();
        Assert.Equal("join", (await MembershipsAsync("sales"))[U("carol")]);
        Assert.Empty((await RunAsync()).Actions);
    }

    [Fact]
    public async Task A_directory_that_accepts_the_connection_but_never_answers_fails_the_run_after_the_timeout()
    {
        using var silent = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        silent.Start();
        var held = new System.Collections.Concurrent.ConcurrentBag<System.Net.Sockets.Socket>();
        _ = Task.Run(async () =>
        {
            while (true)
                held.Add(await silent.AcceptSocketAsync());
        });
        var uri = $"ldap://127.0.0.1:{((System.Net.IPEndPoint)silent.LocalEndpoint).Port}";
        _config.Directory.Uri = uri;
        _config.Directory.TimeoutMs = 1000;
        var reconciler = new Reconciler(_config, _bridge.AppService, new DirectoryReader(_config.Directory));

        // Without the timeout the run waits for ever; the wording depends on which wait libldap was in when it gave up.
        var report = await reconciler.RunAsync(dryRun: true, CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(60));
        var error = Assert.Single(report.Errors);
        Assert.StartsWith($"nothing changed: the directory at {uri} ", error);
        Assert.Empty(report.Actions);
        foreach (var socket in held)
            socket.Dispose();
    }

    /// <summary>The bytes of the user's avatar, fetched as a client would (profile, then authenticated download), or null.</summary>
    private async Task<byte[]?> AvatarAsync(string localpart, string token)
    {
        var field = await C.GetAsync($"/_matrix/client/v3/profile/{Uri.EscapeDataString(U(localpart))}/avatar_url");
        if (field.Body?["avatar_url"]?.GetValue<string>() is not { } mxc)
            return null;
        using var download = await new MediaClient(_server.BaseUrl).GetAsync($"/_matrix/client/v1/media/download/{MediaClient.PathOf(mxc)}", token);
        Assert.Equal("image/png", download.Content.Headers.ContentType!.MediaType);
        return await download.Content.ReadAsByteArrayAsync();
    }

    public async Task DisposeAsync()
    {
        await _bridge.DisposeAsync();
        await _server.DisposeAsync();
        await _database.DisposeAsync();
        await _ldap.DisposeAsync();
        Directory.Delete(_dir, recursive: true);
    }
}

/// <summary>The bridge's command line, run as the operator runs it.</summary>
public sealed class LdapSyncBridgeCommandLineTests
{
    [Fact]
    public async Task Help_prints_the_usage_and_exits_0()
    {
        using var bridge = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("dotnet", [typeof(Reconciler).Assembly.Location, "--help"])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        })!;
        var output = await bridge.StandardOutput.ReadToEndAsync();
        await bridge.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(60));
        Assert.Equal(0, bridge.ExitCode);
        Assert.Contains("usage: LdapBridge", output);
        Assert.Contains("--dry-run", output);
    }
}
