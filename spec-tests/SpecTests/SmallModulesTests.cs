using System.Security.Cryptography;
using System.Text;
using Matrix.SpecTests.Harness;

namespace Matrix.SpecTests;

/// <summary>A server with TURN and support contacts configured.</summary>
public class ModulesServer(string engine) : ServerFixture(engine, """
    voip:
      turn_uris: ["turn:turn.example.com:3478?transport=udp", "turns:turn.example.com:5349"]
      turn_shared_secret: "turn-secret"
      turn_user_lifetime_ms: 3600000

    well_known:
      support_contacts:
        - { matrix_id: "@admin:spec.test", role: m.role.admin }
        - { email_address: "security@example.org", role: m.role.security }
      support_page: "https://example.org/support"
    """);

public sealed class SqliteModulesServer() : ModulesServer("sqlite");
public sealed class PostgresModulesServer() : ModulesServer("postgres");

/// <summary>
/// Spec: the smaller client-server modules: reporting content, mutual rooms, whois, 3PIDs (answered for a server
/// without email or phone support), room summaries, VoIP TURN credentials, support contacts.
/// </summary>
public abstract class SmallModulesTests(ServerFixture fixture)
{
    private MatrixClient C => fixture.Client;
    private const string V3 = "/_matrix/client/v3";

    [Fact]
    public async Task Events_rooms_and_users_are_reported_only_when_the_reporter_can_see_them()
    {
        var alice = await C.RegisterAsync();
        var mallory = await C.RegisterAsync();
        var outsider = await C.RegisterAsync();
        var roomId = await RoomTests.CreateRoomAsync(C, alice, new { invite = new[] { mallory.UserId } });
        Assert.Equal(200, (await C.PostAsync($"{V3}/rooms/{RoomTests.R(roomId)}/join", new { }, mallory.AccessToken)).Status);
        var abuse = await RoomTests.SendAsync(C, mallory, roomId, "spam spam spam");

        Assert.Equal(200, (await C.PostAsync($"{V3}/rooms/{RoomTests.R(roomId)}/report/{RoomTests.R(abuse)}", new { reason = "spam" }, alice.AccessToken)).Status);
        Assert.Equal(200, (await C.PostAsync($"{V3}/rooms/{RoomTests.R(roomId)}/report/{RoomTests.R(abuse)}", new { }, alice.AccessToken)).Status);
        Assert.Equal(404, (await C.PostAsync($"{V3}/rooms/{RoomTests.R(roomId)}/report/{RoomTests.R(abuse)}", new { reason = "x" }, outsider.AccessToken)).Status);
        Assert.Equal(404, (await C.PostAsync($"{V3}/rooms/{RoomTests.R(roomId)}/report/{RoomTests.R("$missing")}", new { reason = "x" }, alice.AccessToken)).Status);
        Assert.Equal(200, (await C.PostAsync($"{V3}/rooms/{RoomTests.R(roomId)}/report", new { reason = "whole room is spam" }, alice.AccessToken)).Status);
        Assert.Equal("M_MISSING_PARAM", (await C.PostAsync($"{V3}/rooms/{RoomTests.R(roomId)}/report", new { }, alice.AccessToken)).Errcode);
        Assert.Equal(404, (await C.PostAsync($"{V3}/rooms/{RoomTests.R($"!nowhere:{C.ServerName}")}/report", new { reason = "x" }, alice.AccessToken)).Status);
        Assert.Equal(200, (await C.PostAsync($"{V3}/users/{Uri.EscapeDataString(mallory.UserId)}/report", new { reason = "abusive" }, alice.AccessToken)).Status);
        Assert.Equal(404, (await C.PostAsync($"{V3}/users/{Uri.EscapeDataString($"@ghost{Guid.NewGuid():N}:{C.ServerName}")}/report", new { reason = "x" }, alice.AccessToken)).Status);
        Assert.Equal(401, (await C.PostAsync($"{V3}/users/{Uri.EscapeDataString(mallory.UserId)}/report", new { reason = "x" })).Status);

        // An event may be reported only by a member joined now (spec), not by one who has left or was banned since.
        Assert.Equal(200, (await C.PostAsync($"{V3}/rooms/{RoomTests.R(roomId)}/leave", new { }, mallory.AccessToken)).Status);
        Assert.Equal(404, (await C.PostAsync($"{V3}/rooms/{RoomTests.R(roomId)}/report/{RoomTests.R(abuse)}", new { reason = "x" }, mallory.AccessToken)).Status);
        // A room may be reported by anyone (spec: "the caller is not required to be joined to the room").
        Assert.Equal(200, (await C.PostAsync($"{V3}/rooms/{RoomTests.R(roomId)}/report", new { reason = "seen from outside" }, outsider.AccessToken)).Status);
    }

    [Fact]
    public async Task Mutual_rooms_list_rooms_both_users_joined()
    {
        var alice = await C.RegisterAsync();
        var bob = await C.RegisterAsync();
        var shared = await RoomTests.CreateRoomAsync(C, alice, new { invite = new[] { bob.UserId } });
        Assert.Equal(200, (await C.PostAsync($"{V3}/rooms/{RoomTests.R(shared)}/join", new { }, bob.AccessToken)).Status);
        await RoomTests.CreateRoomAsync(C, alice, new { invite = new[] { bob.UserId } });
        var mutual = (await C.GetAsync($"/_matrix/client/v1/mutual_rooms?user_id={Uri.EscapeDataString(bob.UserId)}", alice.AccessToken)).Body!;
        Assert.Equal([shared], mutual["joined"]!.AsArray().Select(r => r!.GetValue<string>()).ToArray());
        Assert.Equal(1, mutual["count"]!.GetValue<int>());
        Assert.Empty((await C.GetAsync($"/_matrix/client/v1/mutual_rooms?user_id={Uri.EscapeDataString($"@nobody:{C.ServerName}")}", alice.AccessToken)).Body!["joined"]!.AsArray());
        Assert.Equal("M_INVALID_PARAM", (await C.GetAsync($"/_matrix/client/v1/mutual_rooms?user_id={Uri.EscapeDataString(alice.UserId)}", alice.AccessToken)).Errcode);
        Assert.Equal("M_INVALID_PARAM", (await C.GetAsync("/_matrix/client/v1/mutual_rooms", alice.AccessToken)).Errcode);
    }

    [Fact]
    public async Task Whois_shows_devices_to_the_user_and_admins_only()
    {
        var alice = await C.RegisterAsync();
        var bob = await C.RegisterAsync();
        using (var http = new HttpClient())
        using (var request = new HttpRequestMessage(HttpMethod.Get, $"{fixture.Server.BaseUrl}{V3}/account/whoami"))
        {
            request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", alice.AccessToken);
            request.Headers.UserAgent.ParseAdd("SpecClient/1.0");
            Assert.True((await http.SendAsync(request)).IsSuccessStatusCode);
        }
        var own = (await C.GetAsync($"{V3}/admin/whois/{Uri.EscapeDataString(alice.UserId)}", alice.AccessToken)).Body!;
        Assert.Equal(alice.UserId, own["user_id"]!.GetValue<string>());
        var connection = own["devices"]![alice.DeviceId]!["sessions"]![0]!["connections"]![0]!;
        Assert.Equal("SpecClient/1.0", connection["user_agent"]!.GetValue<string>());
        Assert.Equal("127.0.0.1", connection["ip"]!.GetValue<string>());
        Assert.Equal(403, (await C.GetAsync($"{V3}/admin/whois/{Uri.EscapeDataString(alice.UserId)}", bob.AccessToken)).Status);
    }

    [Fact]
    public async Task Third_party_identifiers_are_declined_clearly()
    {
        var alice = await C.RegisterAsync();
        Assert.Empty((await C.GetAsync($"{V3}/account/3pid", alice.AccessToken)).Body!["threepids"]!.AsArray());
        var token = await C.PostAsync($"{V3}/register/email/requestToken", new { client_secret = "s", email = "a@example.org", send_attempt = 1 });
        Assert.Equal(403, token.Status);
        Assert.Equal("M_THREEPID_DENIED", token.Errcode);
        Assert.Equal("M_THREEPID_DENIED", (await C.PostAsync($"{V3}/account/3pid/add", new { client_secret = "s", sid = "x" }, alice.AccessToken)).Errcode);
        Assert.Equal("no-support", (await C.PostAsync($"{V3}/account/3pid/delete", new { medium = "email", address = "a@example.org" }, alice.AccessToken))
            .Str("id_server_unbind_result"));
    }

    [Fact]
    public async Task Room_summaries_are_shown_to_whoever_may_see_the_room()
    {
        var alice = await C.RegisterAsync();
        var outsider = await C.RegisterAsync();
        var aliasName = $"summary{Guid.NewGuid():N}"[..20];
        var open = await RoomTests.CreateRoomAsync(C, alice, new { preset = "public_chat", name = "Town square", room_alias_name = aliasName, creation_content = new { type = "m.space" } });
        var closed = await RoomTests.CreateRoomAsync(C, alice, new { preset = "private_chat", name = "Back office" });

        var anonymous = (await C.GetAsync($"/_matrix/client/v1/room_summary/{RoomTests.R(open)}")).Body!;
        Assert.Equal(open, anonymous["room_id"]!.GetValue<string>());
        Assert.Equal("Town square", anonymous["name"]!.GetValue<string>());
        Assert.Equal("public", anonymous["join_rule"]!.GetValue<string>());
        Assert.Equal("m.space", anonymous["room_type"]!.GetValue<string>());
        Assert.Equal(1, anonymous["num_joined_members"]!.GetValue<int>());
        Assert.NotNull(anonymous["room_version"]);
        Assert.Null(anonymous["membership"]);
        var byAlias = (await C.GetAsync($"/_matrix/client/v1/room_summary/{Uri.EscapeDataString($"#{aliasName}:{C.ServerName}")}", outsider.AccessToken)).Body!;
        Assert.Equal(open, byAlias["room_id"]!.GetValue<string>());

        Assert.Equal("join", (await C.GetAsync($"/_matrix/client/v1/room_summary/{RoomTests.R(closed)}", alice.AccessToken)).Str("membership"));
        Assert.Equal(404, (await C.GetAsync($"/_matrix/client/v1/room_summary/{RoomTests.R(closed)}", outsider.AccessToken)).Status);
        Assert.Equal(404, (await C.GetAsync($"/_matrix/client/v1/room_summary/{RoomTests.R(closed)}")).Status);
        Assert.Equal(400, (await C.GetAsync("/_matrix/client/v1/room_summary/nonsense", alice.AccessToken)).Status);

        // Someone who left, or was banned from, an invite-only room learns of it no more than any outsider.
        var departed = await C.RegisterAsync();
        var banned = await C.RegisterAsync();
        foreach (var user in new[] { departed, banned })
        {
            Assert.Equal(200, (await C.PostAsync($"/_matrix/client/v3/rooms/{RoomTests.R(closed)}/invite", new { user_id = user.UserId }, alice.AccessToken)).Status);
            Assert.Equal(200, (await C.PostAsync($"/_matrix/client/v3/join/{RoomTests.R(closed)}", new { }, user.AccessToken)).Status);
        }
        Assert.Equal(200, (await C.PostAsync($"/_matrix/client/v3/rooms/{RoomTests.R(closed)}/leave", new { }, departed.AccessToken)).Status);
        Assert.Equal(200, (await C.PostAsync($"/_matrix/client/v3/rooms/{RoomTests.R(closed)}/ban", new { user_id = banned.UserId }, alice.AccessToken)).Status);
        foreach (var user in new[] { departed, banned })
            Assert.Equal(404, (await C.GetAsync($"/_matrix/client/v1/room_summary/{RoomTests.R(closed)}", user.AccessToken)).Status);
    }

    [Fact]
    public async Task Turn_credentials_follow_the_shared_secret_scheme_and_support_contacts_are_published()
    {
        var alice = await C.RegisterAsync();
        var turn = (await C.GetAsync($"{V3}/voip/turnServer", alice.AccessToken)).Body!;
        var username = turn["username"]!.GetValue<string>();
        Assert.EndsWith(":" + alice.UserId, username);
        var expiry = long.Parse(username.Split(':')[0]);
        Assert.InRange(expiry - DateTimeOffset.UtcNow.ToUnixTimeSeconds(), 3500, 3700);
        Assert.Equal(Convert.ToBase64String(HMACSHA1.HashData(Encoding.UTF8.GetBytes("turn-secret"), Encoding.UTF8.GetBytes(username))),
            turn["password"]!.GetValue<string>());
        Assert.Equal(2, turn["uris"]!.AsArray().Count);
        Assert.Equal(3600, turn["ttl"]!.GetValue<long>());
        Assert.Equal(401, (await C.GetAsync($"{V3}/voip/turnServer")).Status);

        var support = (await C.GetAsync("/.well-known/matrix/support")).Body!;
        Assert.Equal("https://example.org/support", support["support_page"]!.GetValue<string>());
        Assert.Equal("m.role.security", support["contacts"]![1]!["role"]!.GetValue<string>());
        Assert.Equal("@admin:spec.test", support["contacts"]![0]!["matrix_id"]!.GetValue<string>());
    }
}

public sealed class SmallModulesTestsSqlite(SqliteModulesServer f) : SmallModulesTests(f), IClassFixture<SqliteModulesServer>;
public sealed class SmallModulesTestsPostgres(PostgresModulesServer f) : SmallModulesTests(f), IClassFixture<PostgresModulesServer>;
