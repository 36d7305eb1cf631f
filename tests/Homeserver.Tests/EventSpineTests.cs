using System.Text.Json.Nodes;
using Matrix.Federation.Auth;
using Matrix.Federation.Crypto;
using Matrix.Federation.Events;
using Matrix.Federation.Rooms;
using Matrix.Homeserver.Config;
using Matrix.Homeserver.Rooms;
using Matrix.Homeserver.Storage;
using Matrix.Homeserver.Sync;

namespace Matrix.Homeserver.Tests;

/// <summary>
/// The spine receiving events from another server ("remote.test", whose events are built and signed here) into a room
/// of this server ("local.test"), on a real database: acceptance, forged signatures, rejection, soft failure, and a
/// fork whose states are resolved.
/// </summary>
public abstract class EventSpineTests(DatabaseFixture fixture)
{
    private const string Alice = "@alice:local.test";
    private const string Bob = "@bob:remote.test";
    private static readonly Ed25519KeyPair RemoteKey = Ed25519KeyPair.Generate("remote");
    private readonly RoomStore _rooms = SingleProcess.Rooms();

    private EventSpine NewSpine()
    {
        var db = fixture.Database;
        var streams = new StreamPositions();
        var cache = new EventCache(db, _rooms, new HomeserverConfig());
        return new EventSpine(db, _rooms, streams, new StateGroupStore(streams), cache, new RoomLocks(), new SyncNotifier(new Observability.ServerMetrics(),
                new Replication.PositionAnnouncer(streams, new RecentEventIndex(new HomeserverConfig()), SingleProcess.Bus, new HomeserverConfig())),
            new HomeserverConfig { ServerName = "local.test" }, Ed25519KeyPair.Generate("local"), TimeProvider.System, [], SingleProcess.Bus,
            new UnansweredSends(TimeProvider.System), new StateGroupCache(db, new StateGroupStore(streams), new HomeserverConfig()));
    }

    private static (VerifyKey, long)? Keys(string server, string keyId) =>
        server == "remote.test" && keyId == RemoteKey.KeyId ? (new VerifyKey(keyId, RemoteKey.PublicKey, long.MaxValue, null), DateTimeOffset.UtcNow.ToUnixTimeMilliseconds()) : null;

    private static async Task<string> PublicRoomAsync(EventSpine spine, RoomVersion version)
    {
        var content = new JsonObject { ["room_version"] = version.Id };
        if (!version.ImplicitRoomCreator)
            content["creator"] = Alice;
        var roomId = (await spine.CreateRoomAsync(version, Alice, content, default)).Pdu.RoomId;
        await spine.SendAsync(roomId, new NewEvent("m.room.member", Alice, Alice, new JsonObject { ["membership"] = "join" }), default);
        var users = version.PrivilegedCreators ? new JsonObject { [Bob] = 50 } : new JsonObject { [Alice] = 100, [Bob] = 50 };
        await spine.SendAsync(roomId, new NewEvent("m.room.power_levels", "", Alice, new JsonObject { ["users"] = users }), default);
        await spine.SendAsync(roomId, new NewEvent("m.room.join_rules", "", Alice, new JsonObject { ["join_rule"] = "public" }), default);
        return roomId;
    }

    /// <summary>An event by Bob's server, citing the given prev events and the auth events the state before them selects.</summary>
    private static async Task<Pdu> RemoteEventAsync(EventSpine spine, string roomId, string type, string? stateKey, JsonObject content,
        IReadOnlyList<string> prevEvents, IReadOnlyDictionary<StateKey, string> state, long? ts = null)
    {
        var room = (await spine.GetRoomAsync(roomId, default))!;
        var version = room.Version;
        var json = new JsonObject
        {
            ["type"] = type, ["sender"] = Bob, ["content"] = content, ["room_id"] = roomId,
            ["origin_server_ts"] = ts ?? DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), ["depth"] = 100,
            ["prev_events"] = References(version, prevEvents),
            ["auth_events"] = References(version, AuthEventSelection.Select(version, type, stateKey, Bob, content, k => state.GetValueOrDefault(k))),
        };
        if (stateKey is not null)
            json["state_key"] = stateKey;
        if (version.EventIdFormat == EventIdFormat.ServerChosen)
            json["event_id"] = $"${Guid.NewGuid():N}:remote.test";
        EventSigning.HashAndSign(json, version, "remote.test", RemoteKey);
        return Pdu.Parse(json, version);
    }

    private static JsonArray References(RoomVersion version, IEnumerable<string> ids) =>
        new(ids.Select(id => version.EventIdFormat == EventIdFormat.ServerChosen
            ? (JsonNode)new JsonArray(id, new JsonObject { ["sha256"] = "" })
            : JsonValue.Create(id)).ToArray());

    private static void Expect(ReceiveOutcome expected, ReceiveResult result) =>
        Assert.True(result.Outcome == expected, $"expected {expected}, got {result.Outcome}: {result.Reason}");

    private static string Head(RoomSnapshot room) => Assert.Single(room.Extremities).EventId;

    private async Task<List<string>> ServedAsync(string roomId) =>
        (await fixture.Database.ReadAsync(s => _rooms.RoomEventsAsync(s, roomId, 0, long.MaxValue, 1000, newestFirst: false), default))
            .Select(r => r.EventId).ToList();

    public static TheoryData<string> Versions => new("1", "10", "12");

    [Theory, MemberData(nameof(Versions))]
    public async Task Remote_join_and_message_are_accepted_forged_ones_dropped_and_gaps_reported(string versionId)
    {
        var spine = NewSpine();
        var roomId = await PublicRoomAsync(spine, RoomVersions.Find(versionId)!);
        var room = (await spine.GetRoomAsync(roomId, default))!;
        var join = await RemoteEventAsync(spine, roomId, "m.room.member", Bob, new JsonObject { ["membership"] = "join" }, [Head(room)], room.State);
        var joined = await spine.ReceiveAsync(join, Keys, default);
        Expect(ReceiveOutcome.Accepted, joined);
        Expect(ReceiveOutcome.Duplicate, (await spine.ReceiveAsync(join, Keys, default)));

        room = (await spine.GetRoomAsync(roomId, default))!;
        Assert.Equal(join.EventId, room.State[StateKey.Member(Bob)]);
        var message = await RemoteEventAsync(spine, roomId, "m.room.message", null, new JsonObject { ["body"] = "hi" }, [Head(room)], room.State);
        Expect(ReceiveOutcome.Accepted, (await spine.ReceiveAsync(message, Keys, default)));
        Assert.Contains(message.EventId, await ServedAsync(roomId));

        var forgedJson = (JsonObject)message.Json.DeepClone();
        forgedJson["origin_server_ts"] = 1;
        var forged = await spine.ReceiveAsync(Pdu.Parse(forgedJson, room.Version), Keys, default);
        Expect(ReceiveOutcome.Dropped, forged);
        Assert.Contains("signature", forged.Reason);

        var orphan = await RemoteEventAsync(spine, roomId, "m.room.message", null, new JsonObject(), ["$unknown:remote.test"], room.State);
        Expect(ReceiveOutcome.MissingEvents, (await spine.ReceiveAsync(orphan, Keys, default)));
    }

    [Theory, MemberData(nameof(Versions))]
    public async Task Events_the_auth_rules_forbid_are_rejected_and_never_served(string versionId)
    {
        var spine = NewSpine();
        var roomId = await PublicRoomAsync(spine, RoomVersions.Find(versionId)!);
        var room = (await spine.GetRoomAsync(roomId, default))!;
        var join = await RemoteEventAsync(spine, roomId, "m.room.member", Bob, new JsonObject { ["membership"] = "join" }, [Head(room)], room.State);
        await spine.ReceiveAsync(join, Keys, default);
        room = (await spine.GetRoomAsync(roomId, default))!;

        var grab = await RemoteEventAsync(spine, roomId, "m.room.power_levels", "", new JsonObject { ["users"] = new JsonObject { [Bob] = 100 } }, [Head(room)], room.State);
        var result = await spine.ReceiveAsync(grab, Keys, default);
        Expect(ReceiveOutcome.Rejected, result);
        var after = (await spine.GetRoomAsync(roomId, default))!;
        Assert.Equal(room.State[StateKey.PowerLevels], after.State[StateKey.PowerLevels]);
        Assert.Equal(Head(room), Head(after));
        Assert.DoesNotContain(grab.EventId, await ServedAsync(roomId));
    }

    [Theory, MemberData(nameof(Versions))]
    public async Task A_message_from_a_since_banned_user_is_soft_failed(string versionId)
    {
        var spine = NewSpine();
        var roomId = await PublicRoomAsync(spine, RoomVersions.Find(versionId)!);
        var room = (await spine.GetRoomAsync(roomId, default))!;
        var join = await RemoteEventAsync(spine, roomId, "m.room.member", Bob, new JsonObject { ["membership"] = "join" }, [Head(room)], room.State);
        await spine.ReceiveAsync(join, Keys, default);
        var beforeBan = (await spine.GetRoomAsync(roomId, default))!;
        await spine.SendAsync(roomId, new NewEvent("m.room.member", Bob, Alice, new JsonObject { ["membership"] = "ban" }), default);

        // Bob's server had not seen the ban: his message cites the event before it.
        var late = await RemoteEventAsync(spine, roomId, "m.room.message", null, new JsonObject { ["body"] = "late" }, [Head(beforeBan)], beforeBan.State);
        var result = await spine.ReceiveAsync(late, Keys, default);
        Expect(ReceiveOutcome.SoftFailed, result);
        Assert.DoesNotContain(late.EventId, await ServedAsync(roomId));
        Assert.DoesNotContain(late.EventId, (await spine.GetRoomAsync(roomId, default))!.Extremities.Select(e => e.EventId));
    }

    [Theory, MemberData(nameof(Versions))]
    public async Task A_fork_is_resolved_and_merged_by_the_next_local_event(string versionId)
    {
        var spine = NewSpine();
        var roomId = await PublicRoomAsync(spine, RoomVersions.Find(versionId)!);
        var room = (await spine.GetRoomAsync(roomId, default))!;
        var join = await RemoteEventAsync(spine, roomId, "m.room.member", Bob, new JsonObject { ["membership"] = "join" }, [Head(room)], room.State);
        await spine.ReceiveAsync(join, Keys, default);
        var forkPoint = (await spine.GetRoomAsync(roomId, default))!;

        var localTopic = await spine.SendAsync(roomId, new NewEvent("m.room.topic", "", Alice, new JsonObject { ["topic"] = "local" }), default);
        var remoteTopic = await RemoteEventAsync(spine, roomId, "m.room.topic", "", new JsonObject { ["topic"] = "remote" }, [Head(forkPoint)], forkPoint.State,
            ts: localTopic.Pdu.OriginServerTs + 60_000);
        Expect(ReceiveOutcome.Accepted, (await spine.ReceiveAsync(remoteTopic, Keys, default)));

        var forked = (await spine.GetRoomAsync(roomId, default))!;
        Assert.Equal(2, forked.Extremities.Count);
        var topicKey = new StateKey("m.room.topic", "");
        // Room v1 picks the deeper topic: the local one, which follows Bob's join (depth 100) at 101. v2 orders topics
        // citing the same power levels by timestamp, so the later remote one is applied last.
        var expected = versionId == "1" ? localTopic.Pdu.EventId : remoteTopic.EventId;
        Assert.Equal(expected, forked.State[topicKey]);

        var merge = await spine.SendAsync(roomId, new NewEvent("m.room.message", null, Alice, new JsonObject { ["body"] = "merge" }), default);
        Assert.Equal(2, merge.Pdu.PrevEvents.Count);
        var merged = (await spine.GetRoomAsync(roomId, default))!;
        Assert.Equal(merge.Pdu.EventId, Head(merged));
        Assert.Equal(expected, merged.State[topicKey]);

        // The stored current state and a fresh load agree with memory.
        var reloaded = await fixture.Database.ReadAsync(s => _rooms.CurrentStateAsync(s, roomId), default);
        Assert.Equal(expected, reloaded.Single(r => r.Type == "m.room.topic").EventId);
        Assert.Equal("join", reloaded.Single(r => r.StateKey == Bob).Membership);
    }
}

public sealed class SqliteEventSpineTests(SqliteDatabase db) : EventSpineTests(db), IClassFixture<SqliteDatabase>;
public sealed class PostgresEventSpineTests(PostgresDatabase db) : EventSpineTests(db), IClassFixture<PostgresDatabase>;
