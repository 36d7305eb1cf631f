using System.Text.Json.Nodes;

namespace Matrix.Homeserver.Replication;

/// <summary>
/// What the processes of one deployment tell each other over Redis. From the main process to its workers: stream
/// positions with the users to wake, room changes, typing, federation destinations, application services and pushers
/// to send to; from a worker to the
/// main process: presence activity, other servers' EDUs queued; from any process to the others: cache invalidations. Encoded as small JSON objects whose <c>k</c> names the kind and
/// <c>o</c> the sending process.
/// </summary>
public abstract record ReplicationMessage
{
    public abstract string Kind { get; }

    /// <summary>The instance name of the process that sent it (set on the messages received).</summary>
    public string Origin { get; init; } = "";

    protected abstract void Write(JsonObject json);

    public string Encode(string origin)
    {
        var json = new JsonObject { ["k"] = Kind, ["o"] = origin };
        Write(json);
        return json.ToJsonString();
    }

    /// <summary>The message, or null for one this process does not know (from a newer version) or cannot read.</summary>
    public static ReplicationMessage? Decode(string text)
    {
        try
        {
            var json = JsonNode.Parse(text)!.AsObject();
            ReplicationMessage? message = (string?)json["k"] switch
            {
                Positions.Name => new Positions(json["p"]!.AsObject().ToDictionary(p => p.Key, p => (long)p.Value!, StringComparer.Ordinal),
                    Strings(json["u"]), (long?)json["ef"], new Rooms.RecentEventIndex.Stretch(
                        json["ev"] is JsonArray events ? events.Select(e => ((long)e![0]!, (string)e[1]!, (int)e[2]! == 1)).ToList() : [],
                        json["rel"] is JsonArray relations ? relations.Select(r => ((long)r![0]!, (string)r[1]!)).ToList() : [],
                        Strings(json["rr"]).ToList()), (string?)json["w"], (long?)json["wa"]),
                RoomChanged.Name => new RoomChanged((string)json["r"]!),
                RoomDropped.Name => new RoomDropped((string)json["r"]!),
                EventsForgotten.Name => new EventsForgotten(Strings(json["e"])),
                Typing.Name => new Typing((string)json["r"]!, Strings(json["u"]), (long)json["s"]!),
                Invalidation.Name => new Invalidation((string)json["c"]!, (string?)json["u"], (string?)json["d"]),
                MainStarted.Name => new MainStarted(),
                PresenceActivity.Name => new PresenceActivity((string)json["u"]!, (string)json["s"]!),
                FederationWake.Name => new FederationWake((string)json["d"]!, (bool?)json["up"] ?? false),
                AppServiceWake.Name => new AppServiceWake((string)json["s"]!),
                InboundEdusQueued.Name => new InboundEdusQueued(),
                PushWake.Name => new PushWake((bool?)json["a"] ?? false, (string?)json["r"], Strings(json["u"]), (string?)json["b"]),
                _ => null,
            };
            return message is null ? null : message with { Origin = (string?)json["o"] ?? "" };
        }
        catch (Exception e) when (e is System.Text.Json.JsonException or InvalidOperationException or NullReferenceException or FormatException)
        {
            return null;
        }
    }

    private static List<string> Strings(JsonNode? array) => array is JsonArray items ? items.Select(i => (string)i!).ToList() : [];

    private static JsonArray Array(IEnumerable<string> items) => new(items.Select(i => (JsonNode)JsonValue.Create(i)).ToArray());

    /// <summary>
    /// Where the main process's readers stand in every stream, the users whose syncs the change concerns, and, when it
    /// could tell them, the events after <paramref name="EventsFrom"/> up to the events position (position, room, whether
    /// a member event) and the events relations written there point at. With several event writers, from each of them
    /// (<paramref name="Writer"/>: <c>main</c> or an event writer's name): the events position is where that writer has
    /// committed everything of its own, and its wake-ups are for once readers see <paramref name="WakeAt"/>.
    /// </summary>
    public sealed record Positions(IReadOnlyDictionary<string, long> Visible, IReadOnlyCollection<string> Wake, long? EventsFrom = null,
        Rooms.RecentEventIndex.Stretch? Stretch = null, string? Writer = null, long? WakeAt = null) : ReplicationMessage
    {
        public const string Name = "positions";
        public override string Kind => Name;

        protected override void Write(JsonObject json)
        {
            var positions = new JsonObject();
            foreach (var (stream, position) in Visible)
                positions[stream] = position;
            json["p"] = positions;
            if (Wake.Count > 0)
                json["u"] = Array(Wake);
            if (Writer is not null)
                json["w"] = Writer;
            if (WakeAt is { } wakeAt)
                json["wa"] = wakeAt;
            if (EventsFrom is { } from)
            {
                json["ef"] = from;
                json["ev"] = new JsonArray((Stretch?.Events ?? []).Select(e => (JsonNode)new JsonArray(e.Position, e.RoomId, e.IsMemberEvent ? 1 : 0)).ToArray());
                json["rel"] = new JsonArray((Stretch?.Relations ?? []).Select(r => (JsonNode)new JsonArray(r.Position, r.TargetId)).ToArray());
                json["rr"] = Array(Stretch?.RoomsWithRedactions ?? []);
            }
        }
    }

    /// <summary>The room's current state, members or forward extremities changed: a worker's snapshot of it is stale.</summary>
    public sealed record RoomChanged(string RoomId) : ReplicationMessage
    {
        public const string Name = "room";
        public override string Kind => Name;
        protected override void Write(JsonObject json) => json["r"] = RoomId;
    }

    /// <summary>The room was deleted from this server (an admin's purge).</summary>
    public sealed record RoomDropped(string RoomId) : ReplicationMessage
    {
        public const string Name = "room_dropped";
        public override string Kind => Name;
        protected override void Write(JsonObject json) => json["r"] = RoomId;
    }

    /// <summary>Events deleted from this server (an admin's history purge).</summary>
    public sealed record EventsForgotten(IReadOnlyList<string> EventIds) : ReplicationMessage
    {
        public const string Name = "events_forgotten";
        public override string Kind => Name;
        protected override void Write(JsonObject json) => json["e"] = Array(EventIds);
    }

    /// <summary>Who types in a room now, and the typing serial this change took.</summary>
    public sealed record Typing(string RoomId, IReadOnlyList<string> Users, long Serial) : ReplicationMessage
    {
        public const string Name = "typing";
        public override string Kind => Name;

        protected override void Write(JsonObject json)
        {
            json["r"] = RoomId;
            json["u"] = Array(Users);
            json["s"] = Serial;
        }
    }

    /// <summary>Cached values a write changed: a whole cache (no user), or one user's (and device's) entry.</summary>
    public sealed record Invalidation(string Cache, string? UserId = null, string? DeviceId = null) : ReplicationMessage
    {
        public const string Name = "invalidate";
        public const string AccessTokens = "access_tokens", DeviceKeyCounts = "device_key_counts", IgnoredUsers = "ignored_users",
            Memberships = "memberships", ErasedUsers = "erased_users";
        public override string Kind => Name;

        protected override void Write(JsonObject json)
        {
            json["c"] = Cache;
            if (UserId is not null)
                json["u"] = UserId;
            if (DeviceId is not null)
                json["d"] = DeviceId;
        }
    }

    /// <summary>The main process (re)started: what workers hold from before (typing, caches) is gone.</summary>
    public sealed record MainStarted : ReplicationMessage
    {
        public const string Name = "main_started";
        public override string Kind => Name;
        protected override void Write(JsonObject json) { }
    }

    /// <summary>Something is queued for a destination (or it was heard from: <paramref name="BackUp"/>): its federation sender sends.</summary>
    public sealed record FederationWake(string Destination, bool BackUp) : ReplicationMessage
    {
        public const string Name = "federation";
        public override string Kind => Name;

        protected override void Write(JsonObject json)
        {
            json["d"] = Destination;
            if (BackUp)
                json["up"] = true;
        }
    }

    /// <summary>
    /// Pushers to look at: every one (<paramref name="All"/>: pushers changed), those of a room's members (a new event in
    /// it) and of <paramref name="Users"/>, or a user's badge after a read receipt.
    /// </summary>
    public sealed record PushWake(bool All = false, string? RoomId = null, IReadOnlyList<string>? Users = null, string? Badge = null) : ReplicationMessage
    {
        public const string Name = "push";
        public override string Kind => Name;

        protected override void Write(JsonObject json)
        {
            if (All)
                json["a"] = true;
            if (RoomId is not null)
                json["r"] = RoomId;
            if (Users is { Count: > 0 })
                json["u"] = Array(Users);
            if (Badge is not null)
                json["b"] = Badge;
        }
    }

    /// <summary>Something is queued for an application service: its sender sends.</summary>
    public sealed record AppServiceWake(string ServiceId) : ReplicationMessage
    {
        public const string Name = "appservice";
        public override string Kind => Name;
        protected override void Write(JsonObject json) => json["s"] = ServiceId;
    }

    /// <summary>An event writer queued other servers' EDUs for the main process to apply.</summary>
    public sealed record InboundEdusQueued : ReplicationMessage
    {
        public const string Name = "inbound_edus";
        public override string Kind => Name;
        protected override void Write(JsonObject json) { }
    }

    /// <summary>A worker's sync marked its user active (the main process writes presence).</summary>
    public sealed record PresenceActivity(string UserId, string State) : ReplicationMessage
    {
        public const string Name = "presence";
        public override string Kind => Name;

        protected override void Write(JsonObject json)
        {
            json["u"] = UserId;
            json["s"] = State;
        }
    }
}
