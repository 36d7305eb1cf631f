using System.Text.Json.Nodes;
using Matrix.SpecTests.Harness;

namespace Matrix.SpecTests;

/// <summary>Synapse's admin API for users (<c>/_synapse/admin</c>), as synadm and synapse-admin call it; and <c>/health</c>.</summary>
public abstract class AdminApiUserTests(ServerFixture fixture)
{
    private MatrixClient C => fixture.Client;
    private const string V1 = "/_synapse/admin/v1";
    private const string V2 = "/_synapse/admin/v2";

    private static string U(string userId) => Uri.EscapeDataString(userId);

    private async Task<(string Token, string UserId)> AdminAsync()
    {
        var token = await RegistrationTests.CreateAdminAsync(C);
        return (token, (await C.GetAsync("/_matrix/client/v3/account/whoami", token)).Str("user_id"));
    }

    [Fact]
    public async Task Health_answers_OK_in_plain_text_and_the_version_needs_no_token()
    {
        var health = await C.GetAsync("/health");
        Assert.Equal(200, health.Status);
        Assert.Equal("OK", await health.Raw.Content.ReadAsStringAsync());
        Assert.Equal("text/plain", health.Raw.Content.Headers.ContentType!.MediaType);
        var version = await C.GetAsync($"{V1}/server_version");
        Assert.Equal(200, version.Status);
        Assert.False(string.IsNullOrEmpty(version.Str("server_version")));
    }

    [Fact]
    public async Task Every_user_endpoint_refuses_non_admins_and_requests_without_a_token()
    {
        var user = await C.RegisterAsync();
        var target = U(user.UserId);
        (HttpMethod Method, string Path)[] endpoints =
        [
            (HttpMethod.Get, $"{V2}/users"), (HttpMethod.Get, $"{V2}/users/{target}"), (HttpMethod.Put, $"{V2}/users/{target}"),
            (HttpMethod.Post, $"{V1}/deactivate/{target}"), (HttpMethod.Post, $"{V1}/reset_password/{target}"),
            (HttpMethod.Get, $"{V1}/users/{target}/admin"), (HttpMethod.Put, $"{V1}/users/{target}/admin"),
            (HttpMethod.Get, $"{V1}/users/{target}/joined_rooms"), (HttpMethod.Get, $"{V2}/users/{target}/devices"),
            (HttpMethod.Post, $"{V2}/users/{target}/devices"), (HttpMethod.Post, $"{V2}/users/{target}/delete_devices"),
            (HttpMethod.Get, $"{V2}/users/{target}/devices/{user.DeviceId}"), (HttpMethod.Put, $"{V2}/users/{target}/devices/{user.DeviceId}"),
            (HttpMethod.Delete, $"{V2}/users/{target}/devices/{user.DeviceId}"), (HttpMethod.Get, $"{V1}/username_available?username=free"),
            (HttpMethod.Put, $"{V1}/suspend/{target}"), (HttpMethod.Get, $"{V1}/users/{target}/memberships"),
            (HttpMethod.Get, $"{V1}/users/{target}/pushers"), (HttpMethod.Get, $"{V1}/users/{target}/accountdata"),
            (HttpMethod.Get, $"{V1}/background_updates/status"),
        ];
        foreach (var (method, path) in endpoints)
        {
            var refused = await C.SendAsync(method, path, new { }, user.AccessToken);
            Assert.True(refused is { Status: 403, Errcode: "M_FORBIDDEN" }, $"{method} {path}: {refused}");
            Assert.Equal(401, (await C.SendAsync(method, path, new { }, null)).Status);
        }
        Assert.Equal(200, (await C.GetAsync("/_matrix/client/v3/account/whoami", user.AccessToken)).Status);
    }

    [Fact]
    public async Task The_user_list_filters_sorts_and_pages_with_next_token()
    {
        var (admin, _) = await AdminAsync();
        var prefix = MatrixClient.UniqueName("list");
        var names = new[] { prefix + "a", prefix + "b", prefix + "c" };
        foreach (var name in names)
            await C.RegisterAsync(name);

        var first = await C.GetAsync($"{V2}/users?name={prefix}&limit=2", admin);
        Assert.Equal(200, first.Status);
        Assert.Equal(3, first.Body!["total"]!.GetValue<long>());
        Assert.Equal("2", first.Str("next_token"));
        Assert.Equal([$"@{names[0]}:{C.ServerName}", $"@{names[1]}:{C.ServerName}"], Names(first));
        var user = first.Body["users"]![0]!;
        Assert.False(user["admin"]!.GetValue<bool>());
        Assert.False(user["deactivated"]!.GetValue<bool>());
        Assert.False(user["is_guest"]!.GetValue<bool>());
        Assert.Equal(names[0], user["displayname"]!.GetValue<string>());
        Assert.True(user["creation_ts"]!.GetValue<long>() > 1_000_000_000_000);

        var rest = await C.GetAsync($"{V2}/users?name={prefix}&limit=2&from=2", admin);
        Assert.Equal([$"@{names[2]}:{C.ServerName}"], Names(rest));
        Assert.Null(rest.Body!["next_token"]);

        var backwards = await C.GetAsync($"{V2}/users?user_id={prefix}&order_by=name&dir=b", admin);
        Assert.Equal(names.Reverse().Select(n => $"@{n}:{C.ServerName}"), Names(backwards));

        await C.PostAsync($"{V1}/deactivate/{U($"@{names[1]}:{C.ServerName}")}", new { }, admin);
        Assert.Equal(2, (await C.GetAsync($"{V2}/users?name={prefix}", admin)).Body!["total"]!.GetValue<long>());
        Assert.Equal(3, (await C.GetAsync($"{V2}/users?name={prefix}&deactivated=true", admin)).Body!["total"]!.GetValue<long>());
        Assert.Equal(0, (await C.GetAsync($"{V2}/users?name={prefix}&admins=true", admin)).Body!["total"]!.GetValue<long>());
        Assert.Equal(200, (await C.GetAsync($"{V2}/users?order_by=creation_ts&dir=b&guests=false", admin)).Status);

        foreach (var bad in new[] { "limit=-1", "from=abc", "order_by=bogus", "dir=sideways", "guests=maybe" })
        {
            var refused = await C.GetAsync($"{V2}/users?{bad}", admin);
            Assert.True(refused is { Status: 400, Errcode: "M_INVALID_PARAM" }, $"{bad}: {refused}");
        }
    }

    private static List<string> Names(MatrixResponse response) =>
        response.Body!["users"]!.AsArray().Select(u => u!["name"]!.GetValue<string>()).ToList();

    [Fact]
    public async Task Put_creates_a_user_with_201_and_modifies_it_with_200()
    {
        var (admin, _) = await AdminAsync();
        var userId = $"@{MatrixClient.UniqueName("put")}:{C.ServerName}";
        var created = await C.PutAsync($"{V2}/users/{U(userId)}", new
        {
            password = "first password", displayname = "Alice Marigold", admin = false,
            threepids = new[] { new { medium = "email", address = $"{Guid.NewGuid():N}@example.com" } },
            external_ids = new[] { new { auth_provider = "example", external_id = Guid.NewGuid().ToString("N") } },
        }, admin);
        Assert.Equal(201, created.Status);
        Assert.Equal(userId, created.Str("name"));
        Assert.Equal("Alice Marigold", created.Str("displayname"));
        Assert.Single(created.Body!["threepids"]!.AsArray());
        Assert.Equal("example", created.Body["external_ids"]![0]!["auth_provider"]!.GetValue<string>());
        Assert.Equal(200, (await C.LoginAsync(userId, "first password")).Status);

        var modified = await C.PutAsync($"{V2}/users/{U(userId)}", new
        {
            displayname = "", avatar_url = "mxc://example.com/abc", admin = true, user_type = "bot", locked = true, threepids = Array.Empty<object>(),
        }, admin);
        Assert.Equal(200, modified.Status);
        Assert.Null(modified.Body!["displayname"]);
        Assert.Equal("mxc://example.com/abc", modified.Str("avatar_url"));
        Assert.True(modified.Body["admin"]!.GetValue<bool>());
        Assert.True(modified.Body["locked"]!.GetValue<bool>());
        Assert.Equal("bot", modified.Str("user_type"));
        Assert.Empty(modified.Body["threepids"]!.AsArray());

        var deactivated = await C.PutAsync($"{V2}/users/{U(userId)}", new { locked = false, deactivated = true }, admin);
        Assert.True(deactivated.Body!["deactivated"]!.GetValue<bool>());
        Assert.NotEqual(200, (await C.LoginAsync(userId, "first password")).Status);
        var reactivated = await C.PutAsync($"{V2}/users/{U(userId)}", new { deactivated = false, password = "second password" }, admin);
        Assert.False(reactivated.Body!["deactivated"]!.GetValue<bool>());
        Assert.Equal(200, (await C.LoginAsync(userId, "second password")).Status);

        Assert.Equal("M_INVALID_PARAM", (await C.PutAsync($"{V2}/users/{U(userId)}", new { user_type = "robot" }, admin)).Errcode);
        Assert.Equal("M_INVALID_PARAM", (await C.PutAsync($"{V2}/users/{U(userId)}", new { deactivated = true, locked = true }, admin)).Errcode);
        Assert.Equal("M_BAD_JSON", (await C.PutAsync($"{V2}/users/{U(userId)}", new { admin = "yes" }, admin)).Errcode);
        Assert.Equal("M_MISSING_PARAM", (await C.PutAsync($"{V2}/users/{U(userId)}", new { threepids = new[] { new { medium = "email" } } }, admin)).Errcode);
        Assert.Equal(400, (await C.PutAsync($"{V2}/users/{U("@someone:elsewhere.example")}", new { }, admin)).Status);
        Assert.Equal(400, (await C.GetAsync($"{V2}/users/not-a-user-id", admin)).Status);
        var unknown = await C.GetAsync($"{V2}/users/{U($"@nobody{Guid.NewGuid():N}:{C.ServerName}")}", admin);
        Assert.True(unknown is { Status: 404, Errcode: "M_NOT_FOUND" }, unknown.ToString());
    }

    [Fact]
    public async Task Deactivation_with_erase_logs_out_leaves_rooms_and_marks_the_user_erased()
    {
        var (admin, _) = await AdminAsync();
        var owner = await C.RegisterAsync();
        var user = await C.RegisterAsync();
        var roomId = await RoomTests.CreateRoomAsync(C, owner, new { preset = "public_chat" });
        Assert.Equal(200, (await C.PostAsync($"/_matrix/client/v3/rooms/{RoomTests.R(roomId)}/join", new { }, user.AccessToken)).Status);

        Assert.Equal("M_BAD_JSON", (await C.PostAsync($"{V1}/deactivate/{U(user.UserId)}", new { erase = "yes" }, admin)).Errcode);
        var done = await C.PostAsync($"{V1}/deactivate/{U(user.UserId)}", new { erase = true }, admin);
        Assert.Equal(200, done.Status);
        Assert.NotNull(done.Body!["id_server_unbind_result"]);

        Assert.Equal(401, (await C.GetAsync("/_matrix/client/v3/account/whoami", user.AccessToken)).Status);
        var details = await C.GetAsync($"{V2}/users/{U(user.UserId)}", admin);
        Assert.True(details.Body!["deactivated"]!.GetValue<bool>());
        Assert.True(details.Body["erased"]!.GetValue<bool>());
        var members = await C.GetAsync($"{V1}/rooms/{RoomTests.R(roomId)}/members", admin);
        Assert.DoesNotContain(user.UserId, members.Body!["members"]!.AsArray().Select(m => m!.GetValue<string>()));
        Assert.Equal("M_NOT_FOUND", (await C.PostAsync($"{V1}/deactivate/{U($"@nobody{Guid.NewGuid():N}:{C.ServerName}")}", new { }, admin)).Errcode);
    }

    [Fact]
    public async Task Reset_password_sets_the_password_and_logs_out_unless_asked_not_to()
    {
        var (admin, _) = await AdminAsync();
        var user = await C.RegisterAsync();
        Assert.Equal("M_MISSING_PARAM", (await C.PostAsync($"{V1}/reset_password/{U(user.UserId)}", new { }, admin)).Errcode);
        Assert.Equal(200, (await C.PostAsync($"{V1}/reset_password/{U(user.UserId)}", new { new_password = "kept sessions", logout_devices = false }, admin)).Status);
        Assert.Equal(200, (await C.GetAsync("/_matrix/client/v3/account/whoami", user.AccessToken)).Status);
        Assert.Equal(200, (await C.PostAsync($"{V1}/reset_password/{U(user.UserId)}", new { new_password = "new password" }, admin)).Status);
        Assert.Equal(401, (await C.GetAsync("/_matrix/client/v3/account/whoami", user.AccessToken)).Status);
        Assert.Equal(200, (await C.LoginAsync(user.UserId, "new password")).Status);
        Assert.NotEqual(200, (await C.LoginAsync(user.UserId, "kept sessions")).Status);
    }

    [Fact]
    public async Task The_admin_flag_is_read_and_set_and_an_admin_cannot_demote_themself()
    {
        var (admin, adminId) = await AdminAsync();
        var user = await C.RegisterAsync();
        var path = $"{V1}/users/{U(user.UserId)}/admin";
        Assert.False((await C.GetAsync(path, admin)).Body!["admin"]!.GetValue<bool>());
        Assert.Equal(200, (await C.PutAsync(path, new { admin = true }, admin)).Status);
        Assert.True((await C.GetAsync(path, admin)).Body!["admin"]!.GetValue<bool>());
        // The new admin's existing session may use the admin API at once.
        Assert.Equal(200, (await C.GetAsync($"{V2}/users?limit=1", user.AccessToken)).Status);
        Assert.Equal("M_MISSING_PARAM", (await C.PutAsync(path, new { }, admin)).Errcode);
        Assert.Equal(400, (await C.PutAsync($"{V1}/users/{U(adminId)}/admin", new { admin = false }, admin)).Status);
        Assert.Equal(200, (await C.PutAsync(path, new { admin = false }, admin)).Status);
        Assert.Equal(403, (await C.GetAsync($"{V2}/users?limit=1", user.AccessToken)).Status);
    }

    [Fact]
    public async Task Suspension_memberships_pushers_and_account_data_of_a_user()
    {
        var (admin, _) = await AdminAsync();
        var user = await C.RegisterAsync();
        var target = U(user.UserId);
        var suspended = await C.PutAsync($"{V1}/suspend/{target}", new { suspend = true }, admin);
        Assert.True(suspended.Body![$"user_{user.UserId}_suspended"]!.GetValue<bool>());
        Assert.Equal("M_USER_SUSPENDED", (await C.PostAsync("/_matrix/client/v3/createRoom", new { }, user.AccessToken)).Errcode);
        Assert.Equal("M_MISSING_PARAM", (await C.PutAsync($"{V1}/suspend/{target}", new { }, admin)).Errcode);
        Assert.Equal("M_BAD_JSON", (await C.PutAsync($"{V1}/suspend/{target}", new { suspend = "no" }, admin)).Errcode);
        Assert.Equal(200, (await C.PutAsync($"{V1}/suspend/{target}", new { suspend = false }, admin)).Status);

        var roomId = await RoomTests.CreateRoomAsync(C, user);
        Assert.Equal(200, (await C.PostAsync($"/_matrix/client/v3/rooms/{RoomTests.R(roomId)}/leave", new { }, user.AccessToken)).Status);
        var memberships = await C.GetAsync($"{V1}/users/{target}/memberships", admin);
        Assert.Equal("leave", memberships.Body!["memberships"]![roomId]!.GetValue<string>());

        Assert.Equal(200, (await C.PostAsync("/_matrix/client/v3/pushers/set", new
        {
            kind = "http", app_id = "org.example.app", pushkey = "key1", app_display_name = "App", device_display_name = "Phone", lang = "en",
            data = new { url = "https://push.example.org/_matrix/push/v1/notify" },
        }, user.AccessToken)).Status);
        var pushers = await C.GetAsync($"{V1}/users/{target}/pushers", admin);
        Assert.Equal(1, pushers.Body!["total"]!.GetValue<int>());
        Assert.Equal("key1", pushers.Body["pushers"]![0]!["pushkey"]!.GetValue<string>());

        Assert.Equal(200, (await C.PutAsync($"/_matrix/client/v3/user/{target}/account_data/org.example.setting", new { on = true }, user.AccessToken)).Status);
        Assert.Equal(200, (await C.PutAsync($"/_matrix/client/v3/user/{target}/rooms/{RoomTests.R(roomId)}/account_data/org.example.room", new { x = 1 }, user.AccessToken)).Status);
        var accountData = (await C.GetAsync($"{V1}/users/{target}/accountdata", admin)).Body!["account_data"]!;
        Assert.True(accountData["global"]!["org.example.setting"]!["on"]!.GetValue<bool>());
        Assert.Equal(1, accountData["rooms"]![roomId]!["org.example.room"]!["x"]!.GetValue<int>());

        Assert.Equal("M_NOT_FOUND", (await C.GetAsync($"{V1}/users/{U($"@nobody{Guid.NewGuid():N}:{C.ServerName}")}/pushers", admin)).Errcode);
        var updates = await C.GetAsync($"{V1}/background_updates/status", admin);
        Assert.True(updates.Body!["enabled"]!.GetValue<bool>());
        Assert.Empty(updates.Body["current_updates"]!.AsObject());
    }

    [Fact]
    public async Task Devices_are_listed_created_renamed_and_deleted()
    {
        var (admin, _) = await AdminAsync();
        var user = await C.RegisterAsync(deviceId: "PHONE");
        var devices = $"{V2}/users/{U(user.UserId)}/devices";
        var list = await C.GetAsync(devices, admin);
        Assert.Equal(1, list.Body!["total"]!.GetValue<int>());
        Assert.Equal(user.UserId, list.Body["devices"]![0]!["user_id"]!.GetValue<string>());

        Assert.Equal(201, (await C.PostAsync(devices, new { device_id = "LAPTOP" }, admin)).Status);
        Assert.Equal(201, (await C.PostAsync(devices, new { device_id = "TABLET" }, admin)).Status);
        Assert.Equal("M_MISSING_PARAM", (await C.PostAsync(devices, new { }, admin)).Errcode);
        Assert.Equal(200, (await C.PutAsync($"{devices}/LAPTOP", new { display_name = "Work laptop" }, admin)).Status);
        var laptop = await C.GetAsync($"{devices}/LAPTOP", admin);
        Assert.Equal("Work laptop", laptop.Str("display_name"));
        Assert.Equal("M_NOT_FOUND", (await C.GetAsync($"{devices}/NOSUCH", admin)).Errcode);
        Assert.Equal("M_NOT_FOUND", (await C.PutAsync($"{devices}/NOSUCH", new { display_name = "x" }, admin)).Errcode);

        Assert.Equal(200, (await C.DeleteAsync($"{devices}/PHONE", new { }, admin)).Status);
        Assert.Equal(401, (await C.GetAsync("/_matrix/client/v3/account/whoami", user.AccessToken)).Status);
        Assert.Equal(200, (await C.PostAsync($"{V2}/users/{U(user.UserId)}/delete_devices", new { devices = new[] { "LAPTOP", "TABLET" } }, admin)).Status);
        Assert.Equal(0, (await C.GetAsync(devices, admin)).Body!["total"]!.GetValue<int>());
        Assert.Equal("M_BAD_JSON", (await C.PostAsync($"{V2}/users/{U(user.UserId)}/delete_devices", new { devices = "LAPTOP" }, admin)).Errcode);
        Assert.Equal("M_NOT_FOUND", (await C.GetAsync($"{V2}/users/{U($"@nobody{Guid.NewGuid():N}:{C.ServerName}")}/devices", admin)).Errcode);
    }

    [Fact]
    public async Task Joined_rooms_whois_and_username_availability()
    {
        var (admin, _) = await AdminAsync();
        var user = await C.RegisterAsync();
        var roomId = await RoomTests.CreateRoomAsync(C, user);
        var joined = await C.GetAsync($"{V1}/users/{U(user.UserId)}/joined_rooms", admin);
        Assert.Equal([roomId], joined.Body!["joined_rooms"]!.AsArray().Select(r => r!.GetValue<string>()));
        Assert.Equal(1, joined.Body["total"]!.GetValue<int>());

        var whois = await C.GetAsync($"{V1}/whois/{U(user.UserId)}", admin);
        Assert.Equal(user.UserId, whois.Str("user_id"));
        Assert.NotNull(whois.Body!["devices"]![user.DeviceId]);

        Assert.True((await C.GetAsync($"{V1}/username_available?username={MatrixClient.UniqueName("free")}", admin)).Body!["available"]!.GetValue<bool>());
        Assert.Equal("M_USER_IN_USE", (await C.GetAsync($"{V1}/username_available?username={user.Localpart}", admin)).Errcode);
        Assert.Equal("M_INVALID_USERNAME", (await C.GetAsync($"{V1}/username_available?username=bad%20name", admin)).Errcode);
        Assert.Equal("M_MISSING_PARAM", (await C.GetAsync($"{V1}/username_available", admin)).Errcode);
    }

    [Fact]
    public async Task An_admins_rate_limit_override_applies_to_the_users_requests_and_zero_lifts_the_limit()
    {
        var admin = await RegistrationTests.CreateAdminAsync(C);
        var user = await C.RegisterAsync();
        var path = $"/_synapse/admin/v1/users/{Uri.EscapeDataString(user.UserId)}/override_ratelimit";
        Assert.Empty((await C.GetAsync(path, admin)).Body!.AsObject());

        var set = await C.PostAsync(path, new { messages_per_second = 1, burst_count = 1 }, admin);
        Assert.Equal(1, set.Body!["messages_per_second"]!.GetValue<int>());
        Assert.Equal(1, (await C.GetAsync(path, admin)).Body!["burst_count"]!.GetValue<int>());
        var limited = await Task.WhenAll(Enumerable.Range(0, 20).Select(_ => C.GetAsync("/_matrix/client/v3/account/whoami", user.AccessToken)));
        Assert.Contains(limited, r => r is { Status: 429, Errcode: "M_LIMIT_EXCEEDED" });

        Assert.Equal(200, (await C.PostAsync(path, new { messages_per_second = 0, burst_count = 0 }, admin)).Status);
        var unlimited = await Task.WhenAll(Enumerable.Range(0, 50).Select(_ => C.GetAsync("/_matrix/client/v3/account/whoami", user.AccessToken)));
        Assert.All(unlimited, r => Assert.Equal(200, r.Status));

        Assert.Empty((await C.DeleteAsync(path, null, admin)).Body!.AsObject());
        Assert.Empty((await C.GetAsync(path, admin)).Body!.AsObject());
        Assert.Equal("M_INVALID_PARAM", (await C.PostAsync(path, new { messages_per_second = -1 }, admin)).Errcode);
        Assert.Equal("M_INVALID_PARAM", (await C.PostAsync(path, new { burst_count = "ten" }, admin)).Errcode);
        Assert.Equal(403, (await C.GetAsync(path, user.AccessToken)).Status);
        Assert.Equal(404, (await C.GetAsync($"/_synapse/admin/v1/users/{Uri.EscapeDataString($"@nobody{Guid.NewGuid():N}:{C.ServerName}")}/override_ratelimit", admin)).Status);
    }

    [Fact]
    public async Task An_admin_logs_in_as_a_user_without_a_device_of_theirs_until_the_admin_logs_out_everywhere()
    {
        var adminToken = await RegistrationTests.CreateAdminAsync(C);
        var adminId = (await C.GetAsync("/_matrix/client/v3/account/whoami", adminToken)).Str("user_id");
        var user = await C.RegisterAsync();
        var path = $"/_synapse/admin/v1/users/{Uri.EscapeDataString(user.UserId)}/login";
        var devicesBefore = (await C.GetAsync("/_matrix/client/v3/devices", user.AccessToken)).Body!["devices"]!.AsArray().Count;

        var puppet = (await C.PostAsync(path, new { }, adminToken)).Str("access_token");
        Assert.Equal(user.UserId, (await C.GetAsync("/_matrix/client/v3/account/whoami", puppet)).Str("user_id"));
        var roomId = await RoomTests.CreateRoomAsync(C, new LoggedInUser(user.UserId, puppet, "", "", user.Localpart));
        Assert.Contains(roomId, (await C.GetAsync("/_matrix/client/v3/joined_rooms", user.AccessToken)).Body!["joined_rooms"]!.AsArray()
            .Select(r => r!.GetValue<string>()));
        Assert.Equal(devicesBefore, (await C.GetAsync("/_matrix/client/v3/devices", user.AccessToken)).Body!["devices"]!.AsArray().Count);

        var shortLived = (await C.PostAsync(path, new { valid_until_ms = DateTimeOffset.UtcNow.AddSeconds(2).ToUnixTimeMilliseconds() }, adminToken))
            .Str("access_token");
        Assert.Equal(200, (await C.GetAsync("/_matrix/client/v3/account/whoami", shortLived)).Status);
        for (var attempt = 0; (await C.GetAsync("/_matrix/client/v3/account/whoami", shortLived)).Status != 401; attempt++)
        {
            Assert.True(attempt < 600, "the token outlived valid_until_ms by a minute");
            await Task.Delay(100);
        }

        Assert.Equal(200, (await C.PostAsync("/_matrix/client/v3/logout/all", new { }, adminToken)).Status);
        Assert.Equal(401, (await C.GetAsync("/_matrix/client/v3/account/whoami", puppet)).Status);
        Assert.Equal(200, (await C.GetAsync("/_matrix/client/v3/account/whoami", user.AccessToken)).Status);

        var admin2 = await RegistrationTests.CreateAdminAsync(C);
        var admin2Id = (await C.GetAsync("/_matrix/client/v3/account/whoami", admin2)).Str("user_id");
        Assert.Equal("M_INVALID_PARAM", (await C.PostAsync($"/_synapse/admin/v1/users/{Uri.EscapeDataString(admin2Id)}/login", new { }, admin2)).Errcode);
        Assert.Equal("M_INVALID_PARAM", (await C.PostAsync(path, new { valid_until_ms = 1 }, admin2)).Errcode);
        Assert.Equal(403, (await C.PostAsync(path, new { }, user.AccessToken)).Status);
        Assert.NotEqual(adminId, admin2Id);
    }

    [Fact]
    public async Task A_shadow_banned_users_sends_invites_and_state_seem_to_succeed_and_reach_nobody()
    {
        var admin = await RegistrationTests.CreateAdminAsync(C);
        var bob = await C.RegisterAsync();
        var eve = await C.RegisterAsync();
        var carol = await C.RegisterAsync();
        var roomId = await RoomTests.CreateRoomAsync(C, bob, new { preset = "public_chat", name = "Lobby" });
        Assert.Equal(200, (await C.PostAsync($"/_matrix/client/v3/join/{RoomTests.R(roomId)}", new { }, eve.AccessToken)).Status);
        var path = $"/_synapse/admin/v1/users/{Uri.EscapeDataString(eve.UserId)}/shadow_ban";
        Assert.Equal(403, (await C.PostAsync(path, new { }, eve.AccessToken)).Status);
        Assert.Empty((await C.PostAsync(path, new { }, admin)).Body!.AsObject());
        Assert.True((await C.GetAsync($"/_synapse/admin/v2/users/{Uri.EscapeDataString(eve.UserId)}", admin)).Body!["shadow_banned"]!.GetValue<bool>());

        var unsent = await RoomTests.SendAsync(C, eve, roomId, "spam");
        Assert.StartsWith("$", unsent);
        Assert.Equal(404, (await C.GetAsync($"/_matrix/client/v3/rooms/{RoomTests.R(roomId)}/event/{Uri.EscapeDataString(unsent)}", bob.AccessToken)).Status);
        Assert.StartsWith("$", (await C.PutAsync($"/_matrix/client/v3/rooms/{RoomTests.R(roomId)}/state/m.room.name", new { name = "Spam" }, eve.AccessToken))
            .Str("event_id"));
        Assert.Equal(200, (await C.PostAsync($"/_matrix/client/v3/rooms/{RoomTests.R(roomId)}/invite", new { user_id = carol.UserId }, eve.AccessToken)).Status);
        await RoomTests.CreateRoomAsync(C, eve, new { invite = new[] { carol.UserId } });
        Assert.Equal(200, (await C.PutAsync($"/_matrix/client/v3/rooms/{RoomTests.R(roomId)}/typing/{Uri.EscapeDataString(eve.UserId)}",
            new { typing = true, timeout = 30000 }, eve.AccessToken)).Status);

        Assert.Equal("Lobby", (await C.GetAsync($"/_matrix/client/v3/rooms/{RoomTests.R(roomId)}/state/m.room.name", bob.AccessToken)).Str("name"));
        var carolSync = await C.GetAsync("/_matrix/client/v3/sync", carol.AccessToken);
        Assert.Empty(carolSync.Body!["rooms"]?["invite"]?.AsObject() ?? []);
        var bobSync = await C.GetAsync("/_matrix/client/v3/sync", bob.AccessToken);
        var timeline = bobSync.Body!["rooms"]!["join"]![roomId]!["timeline"]!["events"]!.AsArray();
        Assert.DoesNotContain(timeline, e => e!["content"]?["body"]?.GetValue<string>() == "spam");
        var typing = bobSync.Body["rooms"]!["join"]![roomId]!["ephemeral"]?["events"]?.AsArray() ?? [];
        Assert.DoesNotContain(typing, e => e!["type"]!.GetValue<string>() == "m.typing" && e["content"]!["user_ids"]!.AsArray().Count > 0);

        Assert.Empty((await C.DeleteAsync(path, null, admin)).Body!.AsObject());
        var sent = await RoomTests.SendAsync(C, eve, roomId, "hello again");
        Assert.Equal(200, (await C.GetAsync($"/_matrix/client/v3/rooms/{RoomTests.R(roomId)}/event/{Uri.EscapeDataString(sent)}", bob.AccessToken)).Status);
    }

    [Fact]
    public async Task An_erased_users_messages_are_redacted_for_those_who_join_later_and_kept_for_those_who_saw_them()
    {
        var admin = await RegistrationTests.CreateAdminAsync(C);
        var alice = await C.RegisterAsync();
        var bob = await C.RegisterAsync();
        var carol = await C.RegisterAsync();
        var roomId = await RoomTests.CreateRoomAsync(C, alice, new { preset = "public_chat" });
        Assert.Equal(200, (await C.PostAsync($"/_matrix/client/v3/join/{RoomTests.R(roomId)}", new { }, bob.AccessToken)).Status);
        var eventId = await RoomTests.SendAsync(C, alice, roomId, "my home address");

        Assert.Equal(200, (await C.PostAsync($"/_synapse/admin/v1/deactivate/{Uri.EscapeDataString(alice.UserId)}", new { erase = true }, admin)).Status);
        Assert.Equal(200, (await C.PostAsync($"/_matrix/client/v3/join/{RoomTests.R(roomId)}", new { }, carol.AccessToken)).Status);

        Assert.Equal("my home address", (await MessageOfAsync(bob))?["content"]?["body"]?.GetValue<string>());
        var seenByCarol = await MessageOfAsync(carol);
        Assert.NotNull(seenByCarol);
        Assert.Empty(seenByCarol!["content"]!.AsObject());
        var single = await C.GetAsync($"/_matrix/client/v3/rooms/{RoomTests.R(roomId)}/event/{Uri.EscapeDataString(eventId)}", carol.AccessToken);
        Assert.Empty(single.Body!["content"]!.AsObject());
        Assert.Equal("my home address", (await C.GetAsync($"/_matrix/client/v3/rooms/{RoomTests.R(roomId)}/event/{Uri.EscapeDataString(eventId)}",
            bob.AccessToken)).Body!["content"]!["body"]!.GetValue<string>());

        async Task<System.Text.Json.Nodes.JsonNode?> MessageOfAsync(LoggedInUser reader) =>
            (await C.GetAsync($"/_matrix/client/v3/rooms/{RoomTests.R(roomId)}/messages?dir=b&limit=50", reader.AccessToken)).Body!["chunk"]!.AsArray()
            .FirstOrDefault(e => e!["event_id"]!.GetValue<string>() == eventId);
    }

    [Fact]
    public async Task V3_lists_deactivated_users_unless_filtered_and_activity_counts_and_features_answer()
    {
        var admin = await RegistrationTests.CreateAdminAsync(C);
        var active = await C.RegisterAsync(MatrixClient.UniqueName("vthree"));
        var gone = await C.RegisterAsync(MatrixClient.UniqueName("vthree"));
        Assert.Equal(200, (await C.PostAsync($"/_synapse/admin/v1/deactivate/{Uri.EscapeDataString(gone.UserId)}", new { }, admin)).Status);
        async Task<List<string>> NamesAsync(string path) => (await C.GetAsync(path, admin)).Body!["users"]!.AsArray()
            .Select(u => u!["name"]!.GetValue<string>()).Where(n => n == active.UserId || n == gone.UserId).Order(StringComparer.Ordinal).ToList();
        Assert.Equal(new[] { active.UserId, gone.UserId }.Order(StringComparer.Ordinal), await NamesAsync("/_synapse/admin/v3/users?name=vthree&limit=1000"));
        Assert.Equal([gone.UserId], await NamesAsync("/_synapse/admin/v3/users?name=vthree&deactivated=true&limit=1000"));
        Assert.Equal([active.UserId], await NamesAsync("/_synapse/admin/v3/users?name=vthree&deactivated=false&limit=1000"));
        Assert.Equal([active.UserId], await NamesAsync("/_synapse/admin/v2/users?name=vthree&limit=1000"));

        var invitee = await C.RegisterAsync();
        var roomId = await RoomTests.CreateRoomAsync(C, active);
        Assert.Equal(200, (await C.PostAsync($"/_matrix/client/v3/rooms/{RoomTests.R(roomId)}/invite", new { user_id = invitee.UserId }, active.AccessToken)).Status);
        var user = $"/_synapse/admin/v1/users/{Uri.EscapeDataString(active.UserId)}";
        Assert.Equal(1, (await C.GetAsync($"{user}/sent_invite_count?from_ts=0", admin)).Body!["invite_count"]!.GetValue<int>());
        Assert.Equal(1, (await C.GetAsync($"{user}/cumulative_joined_room_count?from_ts=0", admin)).Body!["cumulative_joined_room_count"]!.GetValue<int>());
        Assert.Equal(0, (await C.GetAsync($"{user}/sent_invite_count?from_ts={DateTimeOffset.UtcNow.AddHours(1).ToUnixTimeMilliseconds()}", admin))
            .Body!["invite_count"]!.GetValue<int>());
        var largest = (await C.GetAsync("/_synapse/admin/v1/statistics/database/rooms", admin)).Body!["rooms"]!.AsArray();
        Assert.InRange(largest.Count, 1, 10);
        Assert.All(largest, r => Assert.True(r!["estimated_size"]!.GetValue<long>() > 0));

        Assert.Empty((await C.GetAsync($"/_synapse/admin/v1/experimental_features/{Uri.EscapeDataString(active.UserId)}", admin)).Body!["features"]!.AsObject());
        Assert.Equal("M_INVALID_PARAM", (await C.PutAsync($"/_synapse/admin/v1/experimental_features/{Uri.EscapeDataString(active.UserId)}",
            new { features = new { msc9999 = true } }, admin)).Errcode);
        Assert.Equal(403, (await C.GetAsync("/_synapse/admin/v3/users", active.AccessToken)).Status);
    }
}

public sealed class AdminApiUserTestsSqlite(SqliteServer f) : AdminApiUserTests(f), IClassFixture<SqliteServer>;
public sealed class AdminApiUserTestsPostgres(PostgresServer f) : AdminApiUserTests(f), IClassFixture<PostgresServer>;
