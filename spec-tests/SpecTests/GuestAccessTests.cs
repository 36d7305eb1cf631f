using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Matrix.SpecTests.Harness;

namespace Matrix.SpecTests;

/// <summary>
/// Spec: Guest Access. Guest registration (<c>kind=guest</c>) and its upgrade with <c>guest_access_token</c>, the
/// endpoints a guest may call (others answer 403 <c>M_GUEST_ACCESS_FORBIDDEN</c>), joins limited to rooms whose
/// <c>m.room.guest_access</c> is <c>can_join</c>, guests leaving when that is revoked, and reading world-readable rooms
/// without joining.
/// </summary>
public abstract partial class GuestAccessTests(ServerFixture fixture)
{
    public const string GuestYaml = "registration:\n  enabled: true\n  allow_guest_access: true\n";

    private MatrixClient C => fixture.Client;
    private const string V3 = "/_matrix/client/v3";

    [GeneratedRegex(@"^@[0-9]+:")]
    private static partial Regex NumericUserId();

    internal static async Task<LoggedInUser> RegisterGuestAsync(MatrixClient c, object? body = null)
    {
        var response = await c.PostAsync($"{V3}/register?kind=guest", body ?? new { });
        Assert.True(response.Status == 200, response.ToString());
        return new LoggedInUser(response.Str("user_id"), response.Str("access_token"), response.Str("device_id"), "", response.Str("user_id")[1..].Split(':')[0]);
    }

    [Fact]
    public async Task Guest_registration_ignores_all_but_the_device_name_and_makes_a_numeric_guest_account()
    {
        var guest = await RegisterGuestAsync(C, new { username = "chosen", password = "secret password", device_id = "MINE", initial_device_display_name = "Guest phone" });
        Assert.Matches(NumericUserId(), guest.UserId);
        Assert.NotEqual("MINE", guest.DeviceId);

        var whoami = await C.GetAsync($"{V3}/account/whoami", guest.AccessToken);
        Assert.Equal(guest.UserId, whoami.Str("user_id"));
        Assert.Equal(guest.DeviceId, whoami.Str("device_id"));
        Assert.True(whoami.Body!["is_guest"]!.GetValue<bool>());
        var device = await C.GetAsync($"{V3}/devices/{guest.DeviceId}", guest.AccessToken);
        Assert.Equal("Guest phone", device.Str("display_name"));
        Assert.False((await C.GetAsync($"{V3}/account/whoami", (await C.RegisterAsync()).AccessToken)).Body!["is_guest"]!.GetValue<bool>());
    }

    [Fact]
    public async Task Guests_are_refused_endpoints_outside_the_guest_access_module()
    {
        var guest = await RegisterGuestAsync(C);
        var user = await C.RegisterAsync();
        var roomId = await RoomTests.CreateRoomAsync(C, user, new { preset = "public_chat" });
        var me = Uri.EscapeDataString(guest.UserId);

        foreach (var refused in new[]
        {
            await C.PostAsync($"{V3}/createRoom", new { }, guest.AccessToken),
            await C.PostAsync($"{V3}/rooms/{RoomTests.R(roomId)}/invite", new { user_id = user.UserId }, guest.AccessToken),
            await C.PutAsync($"{V3}/profile/{me}/avatar_url", new { avatar_url = "mxc://example.org/abc" }, guest.AccessToken),
            await C.PutAsync($"{V3}/user/{me}/account_data/m.example", new { a = 1 }, guest.AccessToken),
            await C.PostAsync($"{V3}/user_directory/search", new { search_term = "a" }, guest.AccessToken),
            await C.GetAsync($"{V3}/pushrules/", guest.AccessToken),
            await C.PostAsync($"{V3}/user/{me}/filter", new { }, guest.AccessToken),
        })
        {
            Assert.True(refused.Status == 403, refused.ToString());
            Assert.Equal("M_GUEST_ACCESS_FORBIDDEN", refused.Errcode);
        }

        Assert.Equal(200, (await C.GetAsync($"{V3}/sync?timeout=0", guest.AccessToken)).Status);
        Assert.Equal(200, (await C.PostAsync($"{V3}/keys/query", new { device_keys = new Dictionary<string, string[]> { [user.UserId] = [] } }, guest.AccessToken)).Status);
        Assert.Equal(200, (await C.GetAsync($"{V3}/capabilities", guest.AccessToken)).Status);
        Assert.Equal(200, (await C.PutAsync($"{V3}/profile/{me}/displayname", new { displayname = "Visitor" }, guest.AccessToken)).Status);
        Assert.Equal("Visitor", (await C.GetAsync($"{V3}/profile/{me}/displayname", guest.AccessToken)).Str("displayname"));
        Assert.Equal(200, (await C.GetAsync($"{V3}/pushrules/", user.AccessToken)).Status);
    }

    [Fact]
    public async Task Guests_join_and_talk_only_in_rooms_whose_guest_access_is_can_join()
    {
        var guest = await RegisterGuestAsync(C);
        var alice = await C.RegisterAsync();
        var roomId = await RoomTests.CreateRoomAsync(C, alice, new { preset = "public_chat" });
        // The preset's guest access is forbidden by the absence of the event (as Synapse creates it).
        Assert.Equal(404, (await C.GetAsync($"{V3}/rooms/{RoomTests.R(roomId)}/state/m.room.guest_access/", alice.AccessToken)).Status);

        var refused = await C.PostAsync($"{V3}/join/{RoomTests.R(roomId)}", new { }, guest.AccessToken);
        Assert.True(refused.Status == 403, refused.ToString());
        Assert.Equal("M_GUEST_ACCESS_FORBIDDEN", refused.Errcode);
        Assert.Equal(403, (await C.PostAsync($"{V3}/rooms/{RoomTests.R(roomId)}/send/m.room.message", new { msgtype = "m.text", body = "uninvited" }, guest.AccessToken)).Status);

        await SetGuestAccessAsync(alice, roomId, "can_join");
        Assert.Equal(200, (await C.PostAsync($"{V3}/rooms/{RoomTests.R(roomId)}/join", new { }, guest.AccessToken)).Status);
        var sent = await C.PutAsync($"{V3}/rooms/{RoomTests.R(roomId)}/send/m.room.message/t1", new { msgtype = "m.text", body = "hello as a guest" }, guest.AccessToken);
        Assert.True(sent.Status == 200, sent.ToString());
        var messages = await C.GetAsync($"{V3}/rooms/{RoomTests.R(roomId)}/messages?dir=b&limit=5", alice.AccessToken);
        Assert.Contains(messages.Body!["chunk"]!.AsArray(), e => e!["event_id"]!.GetValue<string>() == sent.Str("event_id") && e["sender"]!.GetValue<string>() == guest.UserId);
        var sync = await C.GetAsync($"{V3}/sync?timeout=0", guest.AccessToken);
        Assert.NotNull(sync.Body!["rooms"]!["join"]![roomId]);
        Assert.Equal(200, (await C.PostAsync($"{V3}/rooms/{RoomTests.R(roomId)}/leave", new { }, guest.AccessToken)).Status);
    }

    [Fact]
    public async Task Guests_leave_a_room_when_its_guest_access_stops_being_can_join()
    {
        var guest = await RegisterGuestAsync(C);
        var member = await C.RegisterAsync();
        var alice = await C.RegisterAsync();
        var roomId = await RoomTests.CreateRoomAsync(C, alice, new { preset = "public_chat" });
        await SetGuestAccessAsync(alice, roomId, "can_join");
        Assert.Equal(200, (await C.PostAsync($"{V3}/join/{RoomTests.R(roomId)}", new { }, guest.AccessToken)).Status);
        Assert.Equal(200, (await C.PostAsync($"{V3}/join/{RoomTests.R(roomId)}", new { }, member.AccessToken)).Status);

        await SetGuestAccessAsync(alice, roomId, "forbidden");
        string? membership = null;
        for (var i = 0; i < 50 && membership != "leave"; i++)
        {
            await Task.Delay(100);
            membership = (await C.GetAsync($"{V3}/rooms/{RoomTests.R(roomId)}/state/m.room.member/{Uri.EscapeDataString(guest.UserId)}", alice.AccessToken))
                .Body?["membership"]?.GetValue<string>();
        }
        Assert.Equal("leave", membership);
        var memberState = await C.GetAsync($"{V3}/rooms/{RoomTests.R(roomId)}/state/m.room.member/{Uri.EscapeDataString(member.UserId)}", alice.AccessToken);
        Assert.Equal("join", memberState.Str("membership"));
    }

    [Fact]
    public async Task Guests_read_world_readable_rooms_without_joining_and_nothing_else()
    {
        var guest = await RegisterGuestAsync(C);
        var alice = await C.RegisterAsync();
        var open = await RoomTests.CreateRoomAsync(C, alice, new
        {
            preset = "private_chat",
            initial_state = new[] { new { type = "m.room.history_visibility", state_key = "", content = new { history_visibility = "world_readable" } } },
        });
        var closed = await RoomTests.CreateRoomAsync(C, alice, new { preset = "private_chat" });
        var sent = await C.PutAsync($"{V3}/rooms/{RoomTests.R(open)}/send/m.room.message/t1", new { msgtype = "m.text", body = "for all to see" }, alice.AccessToken);

        var messages = await C.GetAsync($"{V3}/rooms/{RoomTests.R(open)}/messages?dir=b&limit=10", guest.AccessToken);
        Assert.True(messages.Status == 200, messages.ToString());
        Assert.Contains(messages.Body!["chunk"]!.AsArray(), e => e!["event_id"]!.GetValue<string>() == sent.Str("event_id"));
        Assert.Equal(200, (await C.GetAsync($"{V3}/rooms/{RoomTests.R(open)}/state", guest.AccessToken)).Status);
        Assert.Equal(200, (await C.GetAsync($"{V3}/rooms/{RoomTests.R(open)}/state/m.room.member/{Uri.EscapeDataString(alice.UserId)}", guest.AccessToken)).Status);
        Assert.Equal(200, (await C.GetAsync($"{V3}/rooms/{RoomTests.R(open)}/initialSync", guest.AccessToken)).Status);

        Assert.Equal(403, (await C.GetAsync($"{V3}/rooms/{RoomTests.R(closed)}/state", guest.AccessToken)).Status);
        var closedMessages = await C.GetAsync($"{V3}/rooms/{RoomTests.R(closed)}/messages?dir=b", guest.AccessToken);
        Assert.True(closedMessages.Status == 403 || closedMessages.Body!["chunk"]!.AsArray().Count == 0, closedMessages.ToString());
    }

    /// <summary>
    /// Spec (Room Previews): <c>GET /events?room_id=</c> streams a world-readable room's new events to whoever peeks, a
    /// guest or a user who never joined, from the token of the room's <c>initialSync</c> (as matrix-js-sdk's peeking
    /// does); a room that is not world readable is refused, and a guest must name a room.
    /// </summary>
    [Fact]
    public async Task Guests_and_outsiders_follow_a_world_readable_room_by_peeking_at_its_event_stream()
    {
        var guest = await RegisterGuestAsync(C);
        var outsider = await C.RegisterAsync();
        var alice = await C.RegisterAsync();
        var open = await RoomTests.CreateRoomAsync(C, alice, new
        {
            preset = "private_chat",
            initial_state = new[] { new { type = "m.room.history_visibility", state_key = "", content = new { history_visibility = "world_readable" } } },
        });
        var closed = await RoomTests.CreateRoomAsync(C, alice, new { preset = "private_chat" });
        foreach (var peeker in new[] { guest, outsider })
        {
            var preview = await C.GetAsync($"{V3}/rooms/{RoomTests.R(open)}/initialSync", peeker.AccessToken);
            Assert.True(preview.Status == 200, preview.ToString());
            var from = preview.Body!["messages"]!["end"]!.GetValue<string>();
            var quiet = await C.GetAsync($"{V3}/events?room_id={RoomTests.R(open)}&from={from}&timeout=0", peeker.AccessToken);
            Assert.True(quiet.Status == 200, quiet.ToString());
            Assert.Empty(quiet.Body!["chunk"]!.AsArray());

            var listening = C.GetAsync($"{V3}/events?room_id={RoomTests.R(open)}&from={from}&timeout=20000", peeker.AccessToken);
            var sent = await C.PutAsync($"{V3}/rooms/{RoomTests.R(open)}/send/m.room.message/peek-{peeker.UserId}",
                new { msgtype = "m.text", body = "for whoever looks" }, alice.AccessToken);
            var heard = await listening;
            Assert.True(heard.Status == 200, heard.ToString());
            var message = Assert.Single(heard.Body!["chunk"]!.AsArray());
            Assert.Equal(sent.Str("event_id"), message!["event_id"]!.GetValue<string>());
            Assert.Equal(open, message["room_id"]!.GetValue<string>());
            var after = await C.GetAsync($"{V3}/events?room_id={RoomTests.R(open)}&from={heard.Str("end")}&timeout=0", peeker.AccessToken);
            Assert.Empty(after.Body!["chunk"]!.AsArray());

            // The room's typing, receipts and members' presence come too (as Synapse shows them there).
            var status = $"around for {peeker.UserId}";
            Assert.Equal(200, (await C.PutAsync($"{V3}/presence/{alice.UserId}/status", new { presence = "online", status_msg = status }, alice.AccessToken)).Status);
            Assert.Equal(200, (await C.PostAsync($"{V3}/rooms/{RoomTests.R(open)}/receipt/m.read/{Uri.EscapeDataString(sent.Str("event_id"))}", new { }, alice.AccessToken)).Status);
            Assert.Equal(200, (await C.PutAsync($"{V3}/rooms/{RoomTests.R(open)}/typing/{alice.UserId}", new { typing = true, timeout = 30000 }, alice.AccessToken)).Status);
            var token = after.Str("end");
            var ephemeral = new List<JsonNode>();
            JsonNode? presence = null;
            bool Has(string type) => ephemeral.Any(e => e["type"]!.GetValue<string>() == type);
            for (var polls = 0; polls < 30 && (presence is null || !Has("m.receipt") || !Has("m.typing")); polls++)
            {
                var polled = await C.GetAsync($"{V3}/events?room_id={RoomTests.R(open)}&from={token}&timeout=1000", peeker.AccessToken);
                Assert.True(polled.Status == 200, polled.ToString());
                token = polled.Str("end");
                ephemeral.AddRange(polled.Body!["chunk"]!.AsArray().Select(e => e!));
                presence ??= ephemeral.FirstOrDefault(e => e["type"]!.GetValue<string>() == "m.presence" && e["content"]?["status_msg"]?.GetValue<string>() == status);
            }
            Assert.True(presence is not null, "the member's presence never came in the room's stream");
            var receipt = ephemeral.First(e => e["type"]!.GetValue<string>() == "m.receipt");
            Assert.Equal(open, receipt["room_id"]!.GetValue<string>());
            Assert.NotNull(receipt["content"]![sent.Str("event_id")]!["m.read"]![alice.UserId]);
            var typing = ephemeral.First(e => e["type"]!.GetValue<string>() == "m.typing");
            Assert.Equal([alice.UserId], typing["content"]!["user_ids"]!.AsArray().Select(u => u!.GetValue<string>()));
            Assert.Equal(200, (await C.PutAsync($"{V3}/rooms/{RoomTests.R(open)}/typing/{alice.UserId}", new { typing = false }, alice.AccessToken)).Status);
            Assert.Equal(alice.UserId, presence!["sender"]!.GetValue<string>());
            Assert.Equal(alice.UserId, presence["content"]!["user_id"]!.GetValue<string>());

            Assert.Equal("M_FORBIDDEN", (await C.GetAsync($"{V3}/events?room_id={RoomTests.R(closed)}&timeout=0", peeker.AccessToken)).Errcode);
        }
        var unnamed = await C.GetAsync($"{V3}/events?timeout=0", guest.AccessToken);
        Assert.Equal((400, "M_MISSING_PARAM"), (unnamed.Status, unnamed.Errcode));
    }

    [Fact]
    public async Task A_guest_becomes_a_full_account_by_registering_its_user_id_with_its_own_token()
    {
        var guest = await RegisterGuestAsync(C);
        var other = await RegisterGuestAsync(C);
        const string password = "a proper password";

        var wrongToken = await C.PostAsync($"{V3}/register", new { username = guest.Localpart, password, guest_access_token = other.AccessToken });
        Assert.True(wrongToken.Status == 403, wrongToken.ToString());
        var numeric = await C.PostAsync($"{V3}/register", new { username = "12345678", password });
        Assert.Equal("M_INVALID_USERNAME", numeric.Errcode);

        var first = await C.PostAsync($"{V3}/register", new { username = guest.Localpart, password, guest_access_token = guest.AccessToken });
        Assert.True(first.Status == 401, first.ToString());
        var done = await C.PostAsync($"{V3}/register", new
        {
            username = guest.Localpart, password, guest_access_token = guest.AccessToken, auth = new { type = "m.login.dummy", session = first.Str("session") },
        });
        Assert.True(done.Status == 200, done.ToString());
        Assert.Equal(guest.UserId, done.Str("user_id"));
        var token = done.Str("access_token");
        Assert.False((await C.GetAsync($"{V3}/account/whoami", token)).Body!["is_guest"]!.GetValue<bool>());
        Assert.Equal(200, (await C.PostAsync($"{V3}/createRoom", new { }, token)).Status);
        Assert.Equal(200, (await C.LoginAsync(guest.UserId, password)).Status);

        var again = await C.PostAsync($"{V3}/register", new { username = guest.Localpart, password, guest_access_token = token });
        Assert.True(again.Status == 403, again.ToString());
    }

    private async Task SetGuestAccessAsync(LoggedInUser user, string roomId, string value)
    {
        var response = await C.PutAsync($"{V3}/rooms/{RoomTests.R(roomId)}/state/m.room.guest_access/", new { guest_access = value }, user.AccessToken);
        Assert.True(response.Status == 200, response.ToString());
    }
}

public sealed class GuestAccessSqliteServer() : ServerFixture("sqlite", GuestAccessTests.GuestYaml);
public sealed class GuestAccessPostgresServer() : ServerFixture("postgres", GuestAccessTests.GuestYaml);
public sealed class GuestAccessTestsSqlite(GuestAccessSqliteServer f) : GuestAccessTests(f), IClassFixture<GuestAccessSqliteServer>;
public sealed class GuestAccessTestsPostgres(GuestAccessPostgresServer f) : GuestAccessTests(f), IClassFixture<GuestAccessPostgresServer>;

/// <summary>Guest access is off unless configured, as in Synapse: <c>kind=guest</c> is refused.</summary>
public abstract class GuestAccessDisabledTests(ServerFixture fixture)
{
    [Fact]
    public async Task Guest_registration_is_refused_when_guest_access_is_off()
    {
        var response = await fixture.Client.PostAsync("/_matrix/client/v3/register?kind=guest", new { });
        Assert.Equal(403, response.Status);
        Assert.Equal("M_GUEST_ACCESS_FORBIDDEN", response.Errcode);
    }
}

public sealed class GuestAccessDisabledTestsSqlite(SqliteServer f) : GuestAccessDisabledTests(f), IClassFixture<SqliteServer>;
public sealed class GuestAccessDisabledTestsPostgres(PostgresServer f) : GuestAccessDisabledTests(f), IClassFixture<PostgresServer>;

/// <summary>Guests of one server invited to a room on another: the invite's stripped state says whether they may join.</summary>
public sealed class GuestAccessFederationTests(TwoServersWithGuests fixture) : IClassFixture<TwoServersWithGuests>
{
    private const string V3 = "/_matrix/client/v3";

    [Theory]
    [InlineData("can_join", 200)]
    [InlineData("forbidden", 403)]
    public async Task An_invited_guest_joins_a_remote_room_only_when_its_guest_access_is_can_join(string guestAccess, int expected)
    {
        var (home, remote) = (fixture.ClientOf(0), fixture.ClientOf(1));
        var guest = await GuestAccessTests.RegisterGuestAsync(home);
        var owner = await remote.RegisterAsync();
        var roomId = await RoomTests.CreateRoomAsync(remote, owner, new
        {
            preset = "private_chat",
            initial_state = new[] { new { type = "m.room.guest_access", state_key = "", content = new { guest_access = guestAccess } } },
        });
        Assert.Equal(200, (await remote.PostAsync($"{V3}/rooms/{RoomTests.R(roomId)}/invite", new { user_id = guest.UserId }, owner.AccessToken)).Status);
        for (var i = 0; i < 50; i++)
        {
            var sync = await home.GetAsync($"{V3}/sync?timeout=0", guest.AccessToken);
            if (sync.Body?["rooms"]?["invite"]?[roomId] is not null)
                break;
            await Task.Delay(100);
        }

        var join = await home.PostAsync($"{V3}/join/{RoomTests.R(roomId)}", new { }, guest.AccessToken);
        Assert.True(join.Status == expected, join.ToString());
        if (expected == 403)
            Assert.Equal("M_GUEST_ACCESS_FORBIDDEN", join.Errcode);
    }
}

public sealed class TwoServersWithGuests() : FederationFixture(["sqlite", "sqlite"], extraYaml: GuestAccessTests.GuestYaml);
