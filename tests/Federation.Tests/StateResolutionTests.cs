using System.Text.Json.Nodes;
using Matrix.Federation.Events;
using Matrix.Federation.Rooms;
using Matrix.Federation.StateResolution;
using static Matrix.Federation.Tests.TestRoom;

namespace Matrix.Federation.Tests;

/// <summary>State resolution scenarios built as event graphs: forks of one room whose states are resolved.</summary>
public sealed class StateResolutionTests
{
    public static TheoryData<string> V2Versions => new(RoomVersions.All.Where(v => v.StateResolution != StateResolutionAlgorithm.V1).Select(v => v.Id));

    private static Dictionary<StateKey, string> Resolve(TestRoom room, params IReadOnlyDictionary<StateKey, string>[] states) =>
        StateResolver.Resolve(room.Version, room.RoomId, states, room.Graph);

    private static JsonObject Users(RoomVersion version, params (string User, int Level)[] levels)
    {
        var users = new JsonObject();
        if (!version.PrivilegedCreators)
            users[Alice] = 100;
        foreach (var (user, level) in levels)
            users[user] = level;
        return new JsonObject { ["users"] = users };
    }

    /// <summary>Alice (creator), Bob (50) and Carol (0) joined to a public room.</summary>
    private static TestRoom BaseRoom(RoomVersion version)
    {
        var room = TestRoom.WithDefaults(version);
        room.Apply(room.Build(Alice, "m.room.power_levels", "", Users(version, (Bob, 50))));
        room.Apply(room.Member(Bob, Bob, "join"));
        room.Apply(room.Member(Carol, Carol, "join"));
        return room;
    }

    /// <summary>Builds a chain of events on top of a state, returning the state after them.</summary>
    private static (Dictionary<StateKey, string> State, string Last) Fork(TestRoom room, Dictionary<StateKey, string> from, string prev, params Func<Dictionary<StateKey, string>, string, Pdu>[] steps)
    {
        var state = new Dictionary<StateKey, string>(from);
        foreach (var step in steps)
        {
            var pdu = step(state, prev);
            Assert.True(room.Authorize(pdu, state).Allowed, $"fork event {pdu} should be allowed on its branch");
            if (pdu.IsState)
                state[pdu.StateKeyPair] = pdu.EventId;
            prev = pdu.EventId;
        }
        return (state, prev);
    }

    [Theory, MemberData(nameof(V2Versions))]
    public void Concurrent_ban_and_profile_change_keep_the_ban(string versionId)
    {
        var room = BaseRoom(RoomVersions.Find(versionId)!);
        var start = room.Snapshot();
        var (banned, _) = Fork(room, start, room.Latest!, (s, p) => room.Member(Alice, Carol, "ban", state: s, prev: [p]));
        var (talked, _) = Fork(room, start, room.Latest!, (s, p) => room.Member(Carol, Carol, "join", new JsonObject { ["displayname"] = "C" }, s, [p]));

        var resolved = Resolve(room, talked, banned);
        Assert.Equal("ban", room.Graph.Find(resolved[StateKey.Member(Carol)])!.Membership);
        Assert.Equal(banned[StateKey.Member(Carol)], resolved[StateKey.Member(Carol)]);
    }

    [Theory, MemberData(nameof(V2Versions))]
    public void Demotion_beats_a_concurrent_ban_by_the_demoted_moderator(string versionId)
    {
        var version = RoomVersions.Find(versionId)!;
        var room = BaseRoom(version);
        var start = room.Snapshot();
        var (demoted, _) = Fork(room, start, room.Latest!, (s, p) => room.Build(Alice, "m.room.power_levels", "", Users(version), s, [p]));
        var (bobBans, _) = Fork(room, start, room.Latest!, (s, p) => room.Member(Bob, Carol, "ban", state: s, prev: [p]));

        foreach (var order in new[] { new[] { demoted, bobBans }, [bobBans, demoted] })
        {
            var resolved = Resolve(room, order);
            Assert.Equal(demoted[StateKey.PowerLevels], resolved[StateKey.PowerLevels]);
            Assert.Equal(start[StateKey.Member(Carol)], resolved[StateKey.Member(Carol)]);
        }
    }

    [Theory, MemberData(nameof(V2Versions))]
    public void A_join_racing_a_switch_to_invite_only_is_dropped(string versionId)
    {
        var room = BaseRoom(RoomVersions.Find(versionId)!);
        var start = room.Snapshot();
        var (closed, _) = Fork(room, start, room.Latest!, (s, p) => room.Build(Alice, "m.room.join_rules", "", new JsonObject { ["join_rule"] = "invite" }, s, [p]));
        var (joined, _) = Fork(room, start, room.Latest!, (s, p) => room.Member(Dave, Dave, "join", state: s, prev: [p]));

        var resolved = Resolve(room, closed, joined);
        Assert.Equal(closed[StateKey.JoinRules], resolved[StateKey.JoinRules]);
        Assert.False(resolved.ContainsKey(StateKey.Member(Dave)));
    }

    [Theory, MemberData(nameof(V2Versions))]
    public void Topic_conflicts_resolve_by_mainline_then_timestamp(string versionId)
    {
        var room = BaseRoom(RoomVersions.Find(versionId)!);
        var start = room.Snapshot();
        var (early, _) = Fork(room, start, room.Latest!, (s, p) => room.Build(Bob, "m.room.topic", "", new JsonObject { ["topic"] = "early" }, s, [p], ts: 5_000_000_000));
        var (late, _) = Fork(room, start, room.Latest!, (s, p) => room.Build(Alice, "m.room.topic", "", new JsonObject { ["topic"] = "late" }, s, [p], ts: 5_000_000_100));
        Assert.Equal(late[new StateKey("m.room.topic", "")], Resolve(room, early, late)[new StateKey("m.room.topic", "")]);
        Assert.Equal(late[new StateKey("m.room.topic", "")], Resolve(room, late, early)[new StateKey("m.room.topic", "")]);
    }

    [Theory, MemberData(nameof(V2Versions))]
    public void A_topic_authorised_by_a_newer_power_level_wins_over_one_from_before_it(string versionId)
    {
        var version = RoomVersions.Find(versionId)!;
        var room = BaseRoom(version);
        var start = room.Snapshot();
        // Fork A: Alice raises Carol, then Carol sets the topic (early timestamp). Fork B: Bob sets the topic later.
        var (raised, _) = Fork(room, start, room.Latest!,
            (s, p) => room.Build(Alice, "m.room.power_levels", "", Users(version, (Bob, 50), (Carol, 50)), s, [p]),
            (s, p) => room.Build(Carol, "m.room.topic", "", new JsonObject { ["topic"] = "carol" }, s, [p], ts: 1));
        var (bobTopic, _) = Fork(room, start, room.Latest!,
            (s, p) => room.Build(Bob, "m.room.topic", "", new JsonObject { ["topic"] = "bob" }, s, [p], ts: 9_000_000_000));

        var resolved = Resolve(room, raised, bobTopic);
        Assert.Equal(raised[StateKey.PowerLevels], resolved[StateKey.PowerLevels]);
        // Bob's topic cites the older power levels (further down the mainline), so it sorts first and Carol's replaces it.
        Assert.Equal(raised[new StateKey("m.room.topic", "")], resolved[new StateKey("m.room.topic", "")]);
    }

    [Theory, MemberData(nameof(V2Versions))]
    public void Unconflicted_state_is_kept_and_identical_states_are_returned_unchanged(string versionId)
    {
        var room = BaseRoom(RoomVersions.Find(versionId)!);
        var start = room.Snapshot();
        Assert.Equal(start, Resolve(room, start, start));
        var (named, _) = Fork(room, start, room.Latest!, (s, p) => room.Build(Alice, "m.room.name", "", new JsonObject { ["name"] = "n" }, s, [p]));
        var resolved = Resolve(room, start, named);
        Assert.Equal(start.Count + 1, resolved.Count);
        Assert.Equal(named[new StateKey("m.room.name", "")], resolved[new StateKey("m.room.name", "")]);
    }

    [Theory, MemberData(nameof(V2Versions))]
    public void A_kick_from_a_since_demoted_moderator_is_undone(string versionId)
    {
        var version = RoomVersions.Find(versionId)!;
        var room = BaseRoom(version);
        var start = room.Snapshot();
        var (kicked, _) = Fork(room, start, room.Latest!, (s, p) => room.Member(Bob, Carol, "leave", state: s, prev: [p]));
        var (demoted, _) = Fork(room, start, room.Latest!, (s, p) => room.Build(Alice, "m.room.power_levels", "", Users(version, (Bob, 0)), s, [p]));
        var resolved = Resolve(room, kicked, demoted);
        Assert.Equal("join", room.Graph.Find(resolved[StateKey.Member(Carol)])!.Membership);
    }

    /// <summary>
    /// The state reset that motivated v2.1 (room v12): a power levels event (P3, by Bob) depends on an intermediate one
    /// (P2, which gave Bob power) that sits in every auth chain, so v2 leaves it out of the full conflicted set and
    /// re-checks P3 against the old P1, resetting the room to P1. v2.1's conflicted state subgraph replays P2.
    /// </summary>
    [Theory]
    [InlineData("11", false)]
    [InlineData("12", true)]
    public void Conflicted_state_subgraph_prevents_the_power_level_reset(string versionId, bool keepsNewest)
    {
        var version = RoomVersions.Find(versionId)!;
        var room = BaseRoom(version);
        var p1 = room.State[StateKey.PowerLevels];
        var p2 = room.Apply(room.Build(Alice, "m.room.power_levels", "", Users(version, (Bob, 100))));
        var topicUnderP2 = room.Apply(room.Build(Bob, "m.room.topic", "", new JsonObject { ["topic"] = "p2" }));
        var afterTopic = room.Snapshot();
        var p3 = room.Apply(room.Build(Bob, "m.room.power_levels", "", Users(version, (Bob, 100), (Carol, 75))));

        // One side still has P1 (e.g. after an earlier reset), though its topic was authorised by P2.
        var stale = new Dictionary<StateKey, string>(afterTopic) { [StateKey.PowerLevels] = p1 };
        var current = room.Snapshot();
        var resolved = Resolve(room, stale, current);

        Assert.Equal(keepsNewest ? p3.EventId : p1, resolved[StateKey.PowerLevels]);
        Assert.Equal(topicUnderP2.EventId, resolved[new StateKey("m.room.topic", "")]);
        Assert.NotEqual(p2.EventId, resolved[StateKey.PowerLevels]);
    }

    /// <summary>
    /// Bob bans Carol while a moderator; Alice demotes him afterwards. Both states agree on the demotion (unconflicted)
    /// but not on Carol. v2 re-checks the ban against the unconflicted demotion and drops it; v2.1 starts from an
    /// empty state, so the ban is checked against the power levels it was made under and stands.
    /// </summary>
    [Theory]
    [InlineData("11", "join")]
    [InlineData("12", "ban")]
    public void A_ban_made_before_the_moderators_demotion_stands_only_from_v12(string versionId, string expectedMembership)
    {
        var version = RoomVersions.Find(versionId)!;
        var room = BaseRoom(version);
        var start = room.Snapshot();
        var (banned, _) = Fork(room, start, room.Latest!,
            (s, p) => room.Member(Bob, Carol, "ban", state: s, prev: [p]),
            (s, p) => room.Build(Alice, "m.room.power_levels", "", Users(version, (Bob, 0)), s, [p]));
        var otherSide = new Dictionary<StateKey, string>(start) { [StateKey.PowerLevels] = banned[StateKey.PowerLevels] };

        var resolved = Resolve(room, banned, otherSide);
        Assert.Equal(banned[StateKey.PowerLevels], resolved[StateKey.PowerLevels]);
        Assert.Equal(expectedMembership, room.Graph.Find(resolved[StateKey.Member(Carol)])!.Membership);
    }

    [Fact]
    public void Room_v1_resolves_power_levels_by_depth_and_other_state_by_depth_that_passes_auth()
    {
        var version = RoomVersions.V1;
        var room = BaseRoom(version);
        var start = room.Snapshot();
        // Fork A (deeper): Alice demotes Bob, then Bob's topic would fail; Fork B: Bob sets a topic at depth +1.
        var (demoted, _) = Fork(room, start, room.Latest!,
            (s, p) => room.Build(Alice, "m.room.message", null, new JsonObject(), s, [p]),
            (s, p) => room.Build(Alice, "m.room.power_levels", "", Users(version), s, [p]));
        var (bobTopic, _) = Fork(room, start, room.Latest!,
            (s, p) => room.Build(Bob, "m.room.topic", "", new JsonObject { ["topic"] = "bob" }, s, [p]));
        var (aliceTopic, _) = Fork(room, demoted, room.Graph.Find(demoted[StateKey.PowerLevels])!.EventId,
            (s, p) => room.Build(Alice, "m.room.topic", "", new JsonObject { ["topic"] = "alice" }, s, [p]));

        var resolved = Resolve(room, demoted, bobTopic);
        Assert.Equal(demoted[StateKey.PowerLevels], resolved[StateKey.PowerLevels]);
        // Bob's topic no longer passes auth under the demotion, and it is the only candidate: v1 keeps it anyway.
        Assert.Equal(bobTopic[new StateKey("m.room.topic", "")], resolved[new StateKey("m.room.topic", "")]);

        var withBoth = Resolve(room, aliceTopic, bobTopic);
        Assert.Equal(aliceTopic[new StateKey("m.room.topic", "")], withBoth[new StateKey("m.room.topic", "")]);
    }

    [Fact]
    public void Room_v1_keeps_keys_present_in_only_one_state()
    {
        var room = BaseRoom(RoomVersions.V1);
        var start = room.Snapshot();
        var (named, _) = Fork(room, start, room.Latest!, (s, p) => room.Build(Alice, "m.room.name", "", new JsonObject { ["name"] = "n" }, s, [p]));
        var resolved = Resolve(room, start, named);
        Assert.Equal(named[new StateKey("m.room.name", "")], resolved[new StateKey("m.room.name", "")]);
    }

    [Theory, MemberData(nameof(V2Versions))]
    public void Resolution_does_not_depend_on_input_order(string versionId)
    {
        var version = RoomVersions.Find(versionId)!;
        for (var seed = 0; seed < 8; seed++)
        {
            var (room, states) = RandomForks(version, seed);
            var expected = Resolve(room, states.ToArray());
            var random = new Random(seed);
            for (var shuffle = 0; shuffle < 5; shuffle++)
            {
                var permuted = states.OrderBy(_ => random.Next())
                    .Select(s => (IReadOnlyDictionary<StateKey, string>)s.OrderBy(_ => random.Next()).ToDictionary())
                    .ToArray();
                Assert.Equal(expected.OrderBy(p => p.Key.ToString()), Resolve(room, permuted).OrderBy(p => p.Key.ToString()));
            }
        }
    }

    /// <summary>Three forks of random, individually authorised events: topics, kicks, bans, power changes, joins and leaves.</summary>
    internal static (TestRoom Room, List<Dictionary<StateKey, string>> States) RandomForks(RoomVersion version, int seed, int forks = 3, int eventsPerFork = 12)
    {
        var random = new Random(seed);
        var room = BaseRoom(version);
        var users = new[] { Alice, Bob, Carol, Dave };
        var start = room.Snapshot();
        var states = new List<Dictionary<StateKey, string>>();
        for (var f = 0; f < forks; f++)
        {
            var state = new Dictionary<StateKey, string>(start);
            var prev = room.Latest!;
            for (var i = 0; i < eventsPerFork; i++)
            {
                var sender = users[random.Next(users.Length)];
                var target = users[random.Next(users.Length)];
                var pdu = random.Next(6) switch
                {
                    0 => room.Build(sender, "m.room.topic", "", new JsonObject { ["topic"] = $"t{f}.{i}" }, state, [prev], ts: random.Next(1000)),
                    1 => room.Member(sender, target, "ban", state: state, prev: [prev]),
                    2 => room.Member(sender, target, "leave", state: state, prev: [prev]),
                    3 => room.Member(sender, sender, "join", state: state, prev: [prev]),
                    4 => room.Build(sender, "m.room.power_levels", "", Users(version, (target, random.Next(3) * 25)), state, [prev]),
                    _ => room.Build(sender, "m.room.join_rules", "", new JsonObject { ["join_rule"] = random.Next(2) == 0 ? "public" : "invite" }, state, [prev]),
                };
                if (!room.Authorize(pdu, state).Allowed)
                    continue;
                state[pdu.StateKeyPair] = pdu.EventId;
                prev = pdu.EventId;
            }
            states.Add(state);
        }
        return (room, states);
    }
}
