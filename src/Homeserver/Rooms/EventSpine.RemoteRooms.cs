using System.Text.Json.Nodes;
using Matrix.Federation.Auth;
using Matrix.Federation.Crypto;
using Matrix.Federation.Events;
using Matrix.Federation.Json;
using Matrix.Federation.Rooms;
using Matrix.Homeserver.Http;

namespace Matrix.Homeserver.Rooms;

/// <summary>The spine's part in membership over federation: templates for other servers' users, and joining remote rooms.</summary>
public sealed partial class EventSpine
{
    /// <summary>
    /// The membership event template a remote user's server signs to join (<c>make_join</c>/<c>make_knock</c>/
    /// <c>make_leave</c>): prev and auth events from the current state; refused when the auth rules would refuse it.
    /// </summary>
    public async Task<JsonObject> MembershipTemplateAsync(RoomSnapshot room, string userId, string membership, CancellationToken ct,
        string? authoriser = null)
    {
        var content = new JsonObject { ["membership"] = membership };
        if (authoriser is not null)
            content["join_authorised_via_users_server"] = authoriser;
        var prevEvents = room.Extremities.OrderByDescending(e => e.Depth).Take(MaxPrevEvents).ToList();
        var template = new JsonObject
        {
            ["type"] = "m.room.member",
            ["state_key"] = userId,
            ["sender"] = userId,
            ["room_id"] = room.RoomId,
            ["content"] = content,
            ["origin_server_ts"] = clock.GetUtcNow().ToUnixTimeMilliseconds(),
            ["depth"] = Math.Min(prevEvents.Max(e => e.Depth) + 1, CanonicalJson.MaxSafeInteger),
            ["prev_events"] = References(room.Version, prevEvents.Select(e => e.EventId)),
            ["auth_events"] = References(room.Version,
                AuthEventSelection.Select(room.Version, "m.room.member", userId, userId, content, room.StateEventId)),
        };
        if (!room.Version.ImplicitRoomCreator)
            template["origin"] = EventSigning.ServerOf(userId);
        // Checked as if signed: the auth rules only read the fields above.
        var probe = (JsonObject)template.DeepClone();
        probe["hashes"] = new JsonObject { ["sha256"] = "" };
        probe["signatures"] = new JsonObject();
        if (room.Version.EventIdFormat == EventIdFormat.ServerChosen)
            probe["event_id"] = $"$probe:{EventSigning.ServerOf(userId)}";
        // The authoriser's server signature is checked on send_join; here only the rules' other conditions matter.
        if (authoriser is not null)
            probe["signatures"] = new JsonObject { [EventSigning.ServerOf(authoriser)!] = new JsonObject() };
        var pdu = ParseLocal(probe, room.Version);
        var result = EventAuthorizer.Check(pdu, await LoadStateLookupAsync(room.Version, room.State, pdu, ct));
        if (!result.Allowed)
            throw MatrixException.Forbidden(result.Reason);
        return template;
    }

    /// <summary>
    /// Joins a room that lives on other servers (after <c>send_join</c>): checks the state and auth chain the resident
    /// server sent (signatures, each event's auth against its own auth events, the room's create event), stores them as
    /// outliers, then the join event on top of that state as the room's first timeline event here. A room this server
    /// had left is joined the same way: the resident server's state replaces the state that stopped at the leave, and
    /// the join becomes the room's only forward extremity.
    /// </summary>
    public async Task<PersistedEvent> ImportJoinedRoomAsync(Pdu join, IReadOnlyList<Pdu> state, IReadOnlyList<Pdu> authChain,
        Func<Pdu, Task<Func<string, string, (VerifyKey Key, long FetchedAtTs)?>>> keysFor, CancellationToken ct)
    {
        using var roomLock = await locks.AcquireAsync(join.RoomId, ct);
        var left = await GetRoomAsync(join.RoomId, ct);
        if (left is not null && left.JoinedServers.Contains(config.ServerName))
            throw MatrixException.Forbidden("This server is in the room; the join arrives as a normal event.");
        var version = join.Version;
        var all = new Dictionary<string, Pdu>(StringComparer.Ordinal);
        foreach (var pdu in authChain.Concat(state))
        {
            if (pdu.RoomId != join.RoomId || pdu.Version.Id != version.Id)
                throw new MatrixException(502, "M_UNKNOWN", "The resident server sent events of another room.");
            all.TryAdd(pdu.EventId, pdu);
        }
        var create = all.Values.FirstOrDefault(e => e.Type == "m.room.create" && e.StateKey == "")
            ?? throw new MatrixException(502, "M_UNKNOWN", "The resident server sent no create event.");
        if (version.RoomIdIsCreateEventHash ? create.EventId != "$" + join.RoomId[1..] : create.RoomId != join.RoomId)
            throw new MatrixException(502, "M_UNKNOWN", "The create event does not belong to the room.");
        // The version make_join named is the one the room's create event states (spec: "1" when it states none).
        var createdVersion = create.ContentString("room_version") ?? "1";
        if (createdVersion != version.Id)
            throw new MatrixException(502, "M_UNKNOWN", $"The room's create event states version {createdVersion}, not the {version.Id} it was joined as.");

        // Each event must be signed and authorised by its own auth events; oldest first, so auth events are judged first.
        var rejected = new HashSet<string>(StringComparer.Ordinal);
        foreach (var pdu in all.Values.OrderBy(e => e.Depth).ThenBy(e => e.OriginServerTs))
        {
            var authEvents = pdu.AuthEvents.Select(all.GetValueOrDefault).OfType<Pdu>().ToList();
            var ok = EventSigning.HasValidSignatures(pdu, await keysFor(pdu), out _)
                && AuthEventSelection.CheckAgainstAuthEvents(pdu, authEvents, rejected.Contains, version.RoomIdIsCreateEventHash ? create : null).Allowed;
            if (!ok)
                rejected.Add(pdu.EventId);
        }
        var stateBefore = state.Where(e => e.IsState && !rejected.Contains(e.EventId)).ToDictionary(e => e.StateKeyPair, e => e.EventId);
        var result = EventAuthorizer.Check(join, key => stateBefore.TryGetValue(key, out var id) ? all.GetValueOrDefault(id) : null);
        if (!result.Allowed)
            throw MatrixException.Forbidden($"The join is not allowed by the room's state: {result.Reason}");
        var stateAfter = new Dictionary<StateKey, string>(stateBefore) { [join.StateKeyPair] = join.EventId };
        all[join.EventId] = join;
        var members = stateAfter.Where(e => e.Key.Type == "m.room.member").Select(e => (e.Key.Key, all[e.Value].Membership)).ToList();
        var (joined, invited) = (RoomSnapshot.MembersWith(members, "join"), RoomSnapshot.MembersWith(members, "invite"));
        var now = clock.GetUtcNow().ToUnixTimeMilliseconds();

        var (ordering, group) = await db.WriteAsync(async s =>
        {
            if (left is null)
                await rooms.InsertRoomAsync(s, new RoomRow(join.RoomId, version.Id, create.Sender, 0, now));
            var known = (await rooms.GetEventsAsync(s, all.Keys.ToList())).Select(r => r.EventId).ToHashSet();
            foreach (var pdu in all.Values.Where(e => e.EventId != join.EventId && !known.Contains(e.EventId)).OrderBy(e => e.Depth))
                await rooms.InsertEventAsync(s, new EventRow(await streams.NextAsync(s, "events"), pdu.EventId, pdu.RoomId, pdu.Type, pdu.StateKey,
                    pdu.Sender, pdu.Depth, pdu.OriginServerTs, 0, null, pdu.CanonicalText(),
                    Rejected: rejected.Contains(pdu.EventId) ? 1 : 0, Outlier: 1));
            var beforeGroup = await stateGroups.CreateAsync(s, join.RoomId, null, new Dictionary<StateKey, string>(), stateBefore);
            var afterGroup = await stateGroups.CreateAsync(s, join.RoomId, beforeGroup, stateBefore, stateAfter);
            var ordering = await streams.NextAsync(s, "events");
            await rooms.InsertEventAsync(s, new EventRow(ordering, join.EventId, join.RoomId, join.Type, join.StateKey, join.Sender, join.Depth,
                join.OriginServerTs, afterGroup, null, join.CanonicalText()), join);
            await rooms.AdvanceExtremitiesAsync(s, join.RoomId, left?.Extremities.Select(e => e.EventId).ToList() ?? [],
                new Extremity(join.EventId, join.Depth, afterGroup));
            foreach (var (key, eventId) in stateAfter)
                await rooms.SetCurrentStateAsync(s, join.RoomId, key.Type, key.Key, eventId, all[eventId].Membership);
            var joinedRoom = new RoomSnapshot(join.RoomId, version, stateAfter, [new Extremity(join.EventId, join.Depth, afterGroup)], joined, invited);
            foreach (var listener in listeners)
                await listener.OnPersistingAsync(s, join, ordering, joinedRoom, left);
            return (ordering, afterGroup);
        }, ct);

        foreach (var pdu in all.Values)
            events.Add(pdu);
        var snapshot = new RoomSnapshot(join.RoomId, version, stateAfter, [new Extremity(join.EventId, join.Depth, group)], joined, invited);
        SetSnapshot(snapshot, stateChanged: true);
        var concerned = snapshot.MemberUserIds.ToList();
        streams.WhenVisible("events", ordering, () => notifier.Notify(concerned));
        foreach (var listener in listeners)
            listener.OnPersisted(join, snapshot);
        return new PersistedEvent(join, ordering);
    }
}
