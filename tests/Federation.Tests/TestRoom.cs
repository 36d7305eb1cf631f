using System.Text.Json.Nodes;
using Matrix.Federation.Auth;
using Matrix.Federation.Crypto;
using Matrix.Federation.Events;
using Matrix.Federation.Rooms;
using Matrix.Federation.StateResolution;

namespace Matrix.Federation.Tests;

/// <summary>
/// Builds signed events of one room for a room version: auth events chosen from a state map by the spec's
/// selection, prev_events and depth from the caller or the room's latest event. <see cref="State"/> is the room's
/// linear state (updated by <see cref="Apply"/>); forks pass their own state maps.
/// </summary>
public sealed class TestRoom
{
    private static readonly Dictionary<string, Ed25519KeyPair> ServerKeys = [];
    private static int _instances;
    private long _clock;
    private int _counter;

    public RoomVersion Version { get; }
    public string RoomId { get; private set; } = "";
    public InMemoryEventGraph Graph { get; } = new();
    public Dictionary<StateKey, string> State { get; } = [];
    public string? Latest { get; private set; }
    public Pdu Create { get; }

    public const string Alice = "@alice:a.test";
    public const string Bob = "@bob:b.test";
    public const string Carol = "@carol:c.test";
    public const string Dave = "@dave:a.test";

    public TestRoom(RoomVersion version, string creator = Alice, JsonObject? createContent = null)
    {
        Version = version;
        var instance = Interlocked.Increment(ref _instances);
        _clock = instance * 1_000_000L;
        var content = createContent ?? new JsonObject { ["room_version"] = version.Id };
        if (!version.ImplicitRoomCreator && !content.ContainsKey("creator"))
            content["creator"] = creator;
        if (!version.RoomIdIsCreateEventHash)
            RoomId = $"!room{instance}:{EventSigning.ServerOf(creator)}";
        Create = Apply(Build(creator, "m.room.create", "", content, prev: []));
    }

    /// <summary>The usual start of a room: create, creator joins, power levels, public join rules.</summary>
    public static TestRoom WithDefaults(RoomVersion version, string joinRule = "public", JsonObject? users = null)
    {
        var room = new TestRoom(version);
        room.Apply(room.Member(Alice, Alice, "join"));
        var levels = new JsonObject { ["users"] = users ?? (version.PrivilegedCreators ? new JsonObject() : new JsonObject { [Alice] = 100 }) };
        room.Apply(room.Build(Alice, "m.room.power_levels", "", levels));
        room.Apply(room.Build(Alice, "m.room.join_rules", "", new JsonObject { ["join_rule"] = joinRule }));
        return room;
    }

    public static Ed25519KeyPair KeyOf(string server)
    {
        lock (ServerKeys)
        {
            if (!ServerKeys.TryGetValue(server, out var key))
                ServerKeys[server] = key = Ed25519KeyPair.Generate("test");
            return key;
        }
    }

    public Pdu Member(string sender, string target, string membership, JsonObject? extra = null,
        IReadOnlyDictionary<StateKey, string>? state = null, IReadOnlyList<string>? prev = null)
    {
        var content = extra ?? new JsonObject();
        content["membership"] = membership;
        return Build(sender, "m.room.member", target, content, state, prev);
    }

    /// <summary>Builds, hashes and signs an event (signed by the sender's server) and adds it to the graph.</summary>
    public Pdu Build(string sender, string type, string? stateKey, JsonObject content,
        IReadOnlyDictionary<StateKey, string>? state = null, IReadOnlyList<string>? prev = null, long? ts = null, bool rejected = false)
    {
        state ??= State;
        var prevEvents = prev ?? (Latest is null ? [] : [Latest]);
        var depth = prevEvents.Count == 0 ? 1 : prevEvents.Max(id => Graph.Find(id)!.Depth) + 1;
        var authEvents = AuthEventSelection.Select(Version, type, stateKey, sender, content, key => state.GetValueOrDefault(key));
        var json = new JsonObject
        {
            ["type"] = type,
            ["sender"] = sender,
            ["content"] = content,
            ["origin_server_ts"] = ts ?? _clock++,
            ["depth"] = depth,
            ["prev_events"] = References(prevEvents),
            ["auth_events"] = References(authEvents),
        };
        if (stateKey is not null)
            json["state_key"] = stateKey;
        if (!(Version.RoomIdIsCreateEventHash && type == "m.room.create"))
            json["room_id"] = RoomId;
        if (!Version.ImplicitRoomCreator)
            json["origin"] = EventSigning.ServerOf(sender);
        if (Version.EventIdFormat == EventIdFormat.ServerChosen)
            json["event_id"] = $"${++_counter}:{EventSigning.ServerOf(sender)}";
        var server = EventSigning.ServerOf(sender)!;
        EventSigning.HashAndSign(json, Version, server, KeyOf(server));
        var pdu = Pdu.Parse(json, Version);
        if (RoomId.Length == 0)
            RoomId = pdu.RoomId;
        Graph.Add(pdu, rejected);
        return pdu;
    }

    private JsonArray References(IEnumerable<string> ids)
    {
        var array = new JsonArray();
        foreach (var id in ids)
            array.Add(Version.EventIdFormat == EventIdFormat.ServerChosen
                ? new JsonArray(id, new JsonObject { ["sha256"] = "aaaa" })
                : JsonValue.Create(id));
        return array;
    }

    /// <summary>Makes the event the room's latest and, for a state event, part of <see cref="State"/>.</summary>
    public Pdu Apply(Pdu pdu)
    {
        Latest = pdu.EventId;
        if (pdu.IsState)
            State[pdu.StateKeyPair] = pdu.EventId;
        return pdu;
    }

    /// <summary>Checks an event against <paramref name="state"/> (default: the room's current state).</summary>
    public AuthResult Authorize(Pdu pdu, IReadOnlyDictionary<StateKey, string>? state = null)
    {
        state ??= State;
        return EventAuthorizer.Check(pdu, key => state.TryGetValue(key, out var id) ? Graph.Find(id) : key == StateKey.Create ? Create : null);
    }

    /// <summary>Authorises and, if allowed, applies; returns the result.</summary>
    public AuthResult Try(Pdu pdu)
    {
        var result = Authorize(pdu);
        if (result.Allowed)
            Apply(pdu);
        return result;
    }

    public Dictionary<StateKey, string> Snapshot() => new(State);
}
