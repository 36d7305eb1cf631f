using System.Text.Json.Nodes;
using Matrix.SpecTests.Harness;

namespace Matrix.SpecTests;

/// <summary>Spec: "Room upgrades": replacement room, copied state and bans, moved aliases, tombstone, old room restricted.</summary>
public abstract class RoomUpgradeTests(ServerFixture fixture)
{
    private MatrixClient C => fixture.Client;
    private const string V3 = "/_matrix/client/v3";

    private async Task<JsonNode?> StateAsync(LoggedInUser user, string roomId, string type, string stateKey = "") =>
        (await C.GetAsync($"{V3}/rooms/{RoomTests.R(roomId)}/state/{type}/{stateKey}", user.AccessToken)).Body;

    [Fact]
    public async Task An_upgrade_replaces_the_room_and_carries_its_state_aliases_and_bans_over()
    {
        var alice = await C.RegisterAsync();
        var bob = await C.RegisterAsync();
        var mallory = await C.RegisterAsync();
        var aliasName = $"upgrade{Guid.NewGuid():N}"[..20];
        var alias = $"#{aliasName}:{C.ServerName}";
        var old = await RoomTests.CreateRoomAsync(C, alice, new
        {
            room_version = "10", preset = "public_chat", visibility = "public", name = "Design", topic = "Weekly design", room_alias_name = aliasName,
            initial_state = new object[] { new { type = "m.room.encryption", state_key = "", content = new { algorithm = "m.megolm.v1.aes-sha2" } } },
            power_level_content_override = new { users = new Dictionary<string, int> { [alice.UserId] = 100, [bob.UserId] = 50 } },
        });
        foreach (var user in new[] { bob, mallory })
            Assert.Equal(200, (await C.PostAsync($"{V3}/rooms/{RoomTests.R(old)}/join", new { }, user.AccessToken)).Status);
        Assert.Equal(200, (await C.PostAsync($"{V3}/rooms/{RoomTests.R(old)}/ban", new { user_id = mallory.UserId, reason = "spam" }, alice.AccessToken)).Status);

        Assert.Equal(403, (await C.PostAsync($"{V3}/rooms/{RoomTests.R(old)}/upgrade", new { new_version = "12" }, bob.AccessToken)).Status);
        var upgrade = await C.PostAsync($"{V3}/rooms/{RoomTests.R(old)}/upgrade", new { new_version = "12" }, alice.AccessToken);
        Assert.True(upgrade.Status == 200, upgrade.ToString());
        var replacement = upgrade.Str("replacement_room");

        var create = (await StateAsync(alice, replacement, "m.room.create"))!;
        Assert.Equal("12", create["room_version"]!.GetValue<string>());
        Assert.Equal(old, create["predecessor"]!["room_id"]!.GetValue<string>());
        Assert.Equal("Design", (await StateAsync(alice, replacement, "m.room.name"))!["name"]!.GetValue<string>());
        Assert.Equal("Weekly design", (await StateAsync(alice, replacement, "m.room.topic"))!["topic"]!.GetValue<string>());
        Assert.Equal("m.megolm.v1.aes-sha2", (await StateAsync(alice, replacement, "m.room.encryption"))!["algorithm"]!.GetValue<string>());
        Assert.Equal("public", (await StateAsync(alice, replacement, "m.room.join_rules"))!["join_rule"]!.GetValue<string>());
        // The old public_chat room had no guest access event (none means forbidden); the new one says so.
        Assert.Equal(404, (await C.GetAsync($"{V3}/rooms/{RoomTests.R(old)}/state/m.room.guest_access/", alice.AccessToken)).Status);
        Assert.Equal("forbidden", (await StateAsync(alice, replacement, "m.room.guest_access"))!["guest_access"]!.GetValue<string>());
        Assert.Equal("ban", (await StateAsync(alice, replacement, "m.room.member", Uri.EscapeDataString(mallory.UserId)))!["membership"]!.GetValue<string>());
        // Version 12 creators hold their power by being creators, not through the users map.
        var levels = (await StateAsync(alice, replacement, "m.room.power_levels"))!;
        Assert.Null(levels["users"]![alice.UserId]);
        Assert.Equal(50, levels["users"]![bob.UserId]!.GetValue<int>());

        Assert.Equal(replacement, (await C.GetAsync($"{V3}/directory/room/{Uri.EscapeDataString(alias)}")).Str("room_id"));
        Assert.Equal(alias, (await StateAsync(alice, replacement, "m.room.canonical_alias"))!["alias"]!.GetValue<string>());
        Assert.Equal("public", (await C.GetAsync($"{V3}/directory/list/room/{RoomTests.R(replacement)}")).Str("visibility"));
        Assert.Equal("private", (await C.GetAsync($"{V3}/directory/list/room/{RoomTests.R(old)}")).Str("visibility"));

        var tombstone = (await StateAsync(alice, old, "m.room.tombstone"))!;
        Assert.Equal(replacement, tombstone["replacement_room"]!.GetValue<string>());
        var oldLevels = (await StateAsync(alice, old, "m.room.power_levels"))!;
        Assert.Equal(50, oldLevels["events_default"]!.GetValue<int>());
        Assert.Equal(50, oldLevels["invite"]!.GetValue<int>());
        var stranded = await C.RegisterAsync();
        Assert.Equal(200, (await C.PostAsync($"{V3}/rooms/{RoomTests.R(old)}/join", new { }, stranded.AccessToken)).Status);
        Assert.Equal(403, (await C.PutAsync($"{V3}/rooms/{RoomTests.R(old)}/send/m.room.message/{Guid.NewGuid():N}", new { msgtype = "m.text", body = "hello?" }, stranded.AccessToken)).Status);

        // The new room can be joined and used; the old one cannot be upgraded twice.
        Assert.Equal(200, (await C.PostAsync($"{V3}/rooms/{RoomTests.R(replacement)}/join", new { }, bob.AccessToken)).Status);
        await RoomTests.SendAsync(C, bob, replacement, "moved over");
        Assert.Equal(403, (await C.PostAsync($"{V3}/rooms/{RoomTests.R(old)}/upgrade", new { new_version = "12" }, alice.AccessToken)).Status);
    }

    [Fact]
    public async Task Upgrades_to_older_style_versions_keep_the_creator_in_the_levels_and_bad_requests_are_refused()
    {
        var alice = await C.RegisterAsync();
        var outsider = await C.RegisterAsync();
        var old = await RoomTests.CreateRoomAsync(C, alice, new { room_version = "9", creation_content = new { type = "m.space" } });
        Assert.Equal("M_UNSUPPORTED_ROOM_VERSION", (await C.PostAsync($"{V3}/rooms/{RoomTests.R(old)}/upgrade", new { new_version = "99" }, alice.AccessToken)).Errcode);
        Assert.Equal("M_MISSING_PARAM", (await C.PostAsync($"{V3}/rooms/{RoomTests.R(old)}/upgrade", new { }, alice.AccessToken)).Errcode);
        Assert.Equal(403, (await C.PostAsync($"{V3}/rooms/{RoomTests.R(old)}/upgrade", new { new_version = "11" }, outsider.AccessToken)).Status);
        Assert.Equal(400, (await C.PostAsync($"{V3}/rooms/{RoomTests.R(old)}/upgrade", new { new_version = "11", additional_creators = new[] { outsider.UserId } }, alice.AccessToken)).Status);

        Assert.Equal(200, (await C.PutAsync($"{V3}/user/{Uri.EscapeDataString(alice.UserId)}/rooms/{RoomTests.R(old)}/tags/m.favourite", new { order = 0.5 }, alice.AccessToken)).Status);
        var replacement = (await C.PostAsync($"{V3}/rooms/{RoomTests.R(old)}/upgrade", new { new_version = "11" }, alice.AccessToken)).Str("replacement_room");
        // The upgrader's tags of the old room come along (as Synapse does).
        var tags = await C.GetAsync($"{V3}/user/{Uri.EscapeDataString(alice.UserId)}/rooms/{RoomTests.R(replacement)}/tags", alice.AccessToken);
        Assert.Equal(0.5, tags.Body!["tags"]!["m.favourite"]!["order"]!.GetValue<double>());
        var create = (await StateAsync(alice, replacement, "m.room.create"))!;
        Assert.Equal("11", create["room_version"]!.GetValue<string>());
        Assert.Equal("m.space", create["type"]!.GetValue<string>());
        // The predecessor names the old room's last event: its tombstone (as Synapse, and SyTest, expect).
        var tombstone = await C.GetAsync($"{V3}/rooms/{RoomTests.R(old)}/state/m.room.tombstone/?format=event", alice.AccessToken);
        Assert.Equal(tombstone.Str("event_id"), create["predecessor"]!["event_id"]!.GetValue<string>());
        Assert.Equal(replacement, tombstone.Body!["content"]!["replacement_room"]!.GetValue<string>());
        var bogus = await C.PostAsync($"{V3}/rooms/{RoomTests.R("!nosuchroom:example.org")}/upgrade", new { new_version = "11" }, alice.AccessToken);
        Assert.Equal(("M_NOT_FOUND", 404), (bogus.Errcode, bogus.Status));
        Assert.Equal(100, (await StateAsync(alice, replacement, "m.room.power_levels"))!["users"]![alice.UserId]!.GetValue<int>());
    }

    [Fact]
    public async Task Upgrades_keep_levels_above_100_federation_ability_and_direct_chats_and_ignore_false_successors()
    {
        var alice = await C.RegisterAsync();
        var old = await RoomTests.CreateRoomAsync(C, alice, new
        {
            room_version = "10", creation_content = new Dictionary<string, object> { ["m.federate"] = false },
            power_level_content_override = new { users = new Dictionary<string, int> { [alice.UserId] = 500 } },
        });
        var direct = new Dictionary<string, string[]> { ["@friend:elsewhere.example"] = [old] };
        Assert.Equal(200, (await C.PutAsync($"{V3}/user/{Uri.EscapeDataString(alice.UserId)}/account_data/m.direct", direct, alice.AccessToken)).Status);

        var upgrade = await C.PostAsync($"{V3}/rooms/{RoomTests.R(old)}/upgrade", new { new_version = "11" }, alice.AccessToken);
        Assert.True(upgrade.Status == 200, upgrade.ToString());
        var replacement = upgrade.Str("replacement_room");
        Assert.Equal(500, (await StateAsync(alice, replacement, "m.room.power_levels"))!["users"]![alice.UserId]!.GetValue<int>());
        Assert.False((await StateAsync(alice, replacement, "m.room.create"))!["m.federate"]!.GetValue<bool>());
        var listed = await C.GetAsync($"{V3}/user/{Uri.EscapeDataString(alice.UserId)}/account_data/m.direct", alice.AccessToken);
        Assert.Equal([old, replacement], listed.Body!["@friend:elsewhere.example"]!.AsArray().Select(r => r!.GetValue<string>()));

        // A room that only claims to succeed another (no tombstone names it) takes neither aliases nor listings.
        var bob = await C.RegisterAsync();
        var aliasName = $"kept{Guid.NewGuid():N}"[..20];
        var victim = await RoomTests.CreateRoomAsync(C, bob, new { preset = "public_chat", visibility = "public", room_alias_name = aliasName });
        Assert.Equal(200, (await C.PutAsync($"{V3}/user/{Uri.EscapeDataString(bob.UserId)}/account_data/m.direct",
            new Dictionary<string, string[]> { ["@pal:elsewhere.example"] = [victim] }, bob.AccessToken)).Status);
        var pretender = await RoomTests.CreateRoomAsync(C, alice, new
        {
            preset = "public_chat", creation_content = new { predecessor = new { room_id = victim } },
        });
        Assert.Equal(200, (await C.PostAsync($"{V3}/rooms/{RoomTests.R(pretender)}/join", new { }, bob.AccessToken)).Status);
        Assert.Equal(victim, (await C.GetAsync($"{V3}/directory/room/{Uri.EscapeDataString($"#{aliasName}:{C.ServerName}")}")).Str("room_id"));
        Assert.Equal("public", (await C.GetAsync($"{V3}/directory/list/room/{RoomTests.R(victim)}")).Str("visibility"));
        var bobsDirect = await C.GetAsync($"{V3}/user/{Uri.EscapeDataString(bob.UserId)}/account_data/m.direct", bob.AccessToken);
        Assert.Equal([victim], bobsDirect.Body!["@pal:elsewhere.example"]!.AsArray().Select(r => r!.GetValue<string>()));
    }
}

public sealed class RoomUpgradeTestsSqlite(SqliteServer f) : RoomUpgradeTests(f), IClassFixture<SqliteServer>;
public sealed class RoomUpgradeTestsPostgres(PostgresServer f) : RoomUpgradeTests(f), IClassFixture<PostgresServer>;
