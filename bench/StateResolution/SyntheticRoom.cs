using System.Text.Json.Nodes;
using Matrix.Federation.Auth;
using Matrix.Federation.Events;
using Matrix.Federation.Rooms;
using Matrix.Federation.StateResolution;

namespace Matrix.Bench.StateResolution;

/// <summary>
/// Builds a large room as an event graph: many users joining and changing their profiles (the auth chain), a chain
/// of power level changes, then forks whose member events conflict. Events are hashed but not signed: resolution
/// never looks at signatures.
/// </summary>
internal sealed class SyntheticRoom
{
    private const string Admin = "@admin:bench.test";
    private long _ts = 1_600_000_000_000;

    public RoomVersion Version { get; }
    public InMemoryEventGraph Graph { get; } = new();
    public Dictionary<StateKey, string> State { get; } = [];
    public string RoomId { get; private set; } = "!bench:bench.test";

    public SyntheticRoom(RoomVersion version) => Version = version;

    public static string User(int i) => $"@user{i}:bench.test";

    public Pdu Add(string sender, string type, string? stateKey, JsonObject content, Dictionary<StateKey, string> state)
    {
        var json = new JsonObject
        {
            ["type"] = type, ["sender"] = sender, ["content"] = content, ["origin_server_ts"] = _ts++, ["depth"] = Graph.Count + 1,
            ["prev_events"] = new JsonArray(), ["hashes"] = new JsonObject { ["sha256"] = "x" }, ["signatures"] = new JsonObject(),
            ["auth_events"] = new JsonArray(AuthEventSelection.Select(Version, type, stateKey, sender, content, k => state.GetValueOrDefault(k))
                .Select(id => (JsonNode)JsonValue.Create(id)!).ToArray()),
        };
        if (stateKey is not null)
            json["state_key"] = stateKey;
        if (!(Version.RoomIdIsCreateEventHash && type == "m.room.create"))
            json["room_id"] = RoomId;
        var pdu = Pdu.Parse(json, Version);
        if (type == "m.room.create")
            RoomId = pdu.RoomId;
        Graph.Add(pdu);
        if (pdu.IsState)
            state[pdu.StateKeyPair] = pdu.EventId;
        return pdu;
    }

    private JsonObject PowerLevels(int round) => new()
    {
        ["users"] = Version.PrivilegedCreators ? new JsonObject { [User(0)] = 100 } : new JsonObject { [Admin] = 100, [User(0)] = 100 },
        ["state_default"] = 50, ["events_default"] = 0, ["kick"] = 50 + round % 2, ["ban"] = 50,
    };

    /// <summary>Creates the room and grows its auth chain to about <paramref name="chainEvents"/> events.</summary>
    public void Grow(int chainEvents, int powerLevelChanges = 100)
    {
        Add(Admin, "m.room.create", "", Version.ImplicitRoomCreator ? new JsonObject { ["room_version"] = Version.Id } : new JsonObject { ["creator"] = Admin }, State);
        Add(Admin, "m.room.member", Admin, new JsonObject { ["membership"] = "join" }, State);
        Add(Admin, "m.room.power_levels", "", PowerLevels(0), State);
        Add(Admin, "m.room.join_rules", "", new JsonObject { ["join_rule"] = "public" }, State);
        var users = (chainEvents - powerLevelChanges) / 2;
        for (var i = 0; i < users; i++)
        {
            Add(User(i), "m.room.member", User(i), new JsonObject { ["membership"] = "join" }, State);
            Add(User(i), "m.room.member", User(i), new JsonObject { ["membership"] = "join", ["displayname"] = $"User {i}" }, State);
            if (i % (users / powerLevelChanges + 1) == 0)
                Add(Admin, "m.room.power_levels", "", PowerLevels(i), State);
        }
    }

    /// <summary>
    /// Two forks from the current state, together holding <paramref name="conflictedEvents"/> conflicting events: member
    /// changes of distinct users in both forks, with a few kicks and power level changes among them.
    /// </summary>
    public (Dictionary<StateKey, string> A, Dictionary<StateKey, string> B) Fork(int conflictedEvents)
    {
        var a = new Dictionary<StateKey, string>(State);
        var b = new Dictionary<StateKey, string>(State);
        var perFork = conflictedEvents / 2;
        for (var i = 0; i < perFork; i++)
        {
            var user = User(1 + i);
            if (i % 500 == 0)
            {
                Add(Admin, "m.room.power_levels", "", PowerLevels(i + 1), a);
                Add(User(0), "m.room.member", user, new JsonObject { ["membership"] = "leave" }, b);
                continue;
            }
            Add(user, "m.room.member", user, new JsonObject { ["membership"] = "join", ["displayname"] = $"A{i}" }, a);
            Add(user, "m.room.member", user, new JsonObject { ["membership"] = "join", ["displayname"] = $"B{i}" }, b);
        }
        return (a, b);
    }
}
