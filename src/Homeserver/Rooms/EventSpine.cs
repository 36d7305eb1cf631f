using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using Matrix.Federation.Auth;
using Matrix.Federation.Crypto;
using Matrix.Federation.Events;
using Matrix.Federation.Json;
using Matrix.Federation.Rooms;
using Matrix.Federation.StateResolution;
using Matrix.Homeserver.Config;
using Matrix.Homeserver.Http;
using Matrix.Homeserver.Storage;
using Matrix.Homeserver.Sync;

namespace Matrix.Homeserver.Rooms;

/// <summary>An event a local user asks to send.</summary>
public sealed record NewEvent(string Type, string? StateKey, string Sender, JsonObject Content)
{
    /// <summary>For <c>m.room.redaction</c>: the event to redact (placed at the top level or in content by room version).</summary>
    public string? Redacts { get; init; }
    /// <summary>The client transaction (device and txnId) that makes a send idempotent.</summary>
    public (string DeviceId, string TxnId)? Transaction { get; init; }
    /// <summary>An application service's own timestamp for the event (the <c>ts</c> parameter); null means now.</summary>
    public long? OriginServerTs { get; init; }
    /// <summary>
    /// Runs after the auth checks, before the event is stored: an invite to another server's user is sent there to be
    /// counter-signed first. It returns the event to store (same event ID) or throws to abandon it.
    /// </summary>
    public Func<Pdu, CancellationToken, Task<Pdu>>? BeforePersist { get; init; }
}

public sealed record PersistedEvent(Pdu Pdu, long StreamOrdering);

public enum ReceiveOutcome { Accepted, SoftFailed, Rejected, Duplicate, Dropped, MissingEvents }

/// <summary>What became of an event received from another server.</summary>
public sealed record ReceiveResult(ReceiveOutcome Outcome, string Reason, PersistedEvent? Event = null);

/// <summary>
/// The one pipeline every event goes through. Local events: build -> sign -> format and auth against the current
/// state. Remote events: format -> signatures (redacted on a hash mismatch) -> auth against their auth events ->
/// auth against the state before them (resolved from their prev events) -> soft-fail against the current state.
/// Then, for both: persist event, state group, forward extremities, current state and stream position in one
/// transaction -> update the in-memory room -> wake syncs. Events of one room are processed one at a time.
/// </summary>
public sealed partial class EventSpine(
    Database db, RoomStore rooms, StreamPositions streams, StateGroupStore stateGroups, EventCache events, RoomLocks locks,
    SyncNotifier notifier, HomeserverConfig config, Ed25519KeyPair signingKey, TimeProvider clock, IEnumerable<IEventListener> listeners,
    Replication.ReplicationBus replication, UnansweredSends unanswered, StateGroupCache groups)
{
    /// <summary>Prev events a new local event cites at most (the newest extremities).</summary>
    public const int MaxPrevEvents = 10;

    private readonly ConcurrentDictionary<string, RoomSnapshot> _snapshots = new(StringComparer.Ordinal);
    // Bumped whenever a worker drops a snapshot the main process changed, so a load begun before cannot store a stale one.
    private long _forgottenSnapshots;

    /// <summary>The room's current snapshot, or null when this server does not know the room.</summary>
    public async Task<RoomSnapshot?> GetRoomAsync(string roomId, CancellationToken ct)
    {
        if (_snapshots.TryGetValue(roomId, out var snapshot))
            return snapshot;
        var forgotten = Interlocked.Read(ref _forgottenSnapshots);
        snapshot = await db.ReadAsync(async s =>
        {
            var room = await rooms.GetRoomAsync(s, roomId);
            if (room is null || RoomVersions.Find(room.RoomVersion) is not { } version)
                return null;
            var extremities = await rooms.ExtremitiesAsync(s, roomId);
            var rows = await rooms.CurrentStateAsync(s, roomId);
            var state = rows.ToDictionary(r => new StateKey(r.Type, r.StateKey), r => r.EventId);
            var members = rows.Where(r => r.Type == "m.room.member").Select(r => (r.StateKey, r.Membership)).ToList();
            return extremities.Count == 0 ? null : new RoomSnapshot(roomId, version, state, extremities,
                RoomSnapshot.MembersWith(members, "join"), RoomSnapshot.MembersWith(members, "invite"));
        }, ct);
        if (snapshot is null || Interlocked.Read(ref _forgottenSnapshots) != forgotten)
            return snapshot;
        return _snapshots.GetOrAdd(roomId, snapshot);
    }

    /// <summary>A worker: the main process changed the room, so its snapshot here is stale (the next read loads it).</summary>
    public void ForgetSnapshot(string roomId)
    {
        Interlocked.Increment(ref _forgottenSnapshots);
        _snapshots.TryRemove(roomId, out RoomSnapshot? _);
    }

    /// <summary>A worker that may have missed changes (Redis was away): every snapshot is loaded again.</summary>
    public void ForgetAllSnapshots()
    {
        Interlocked.Increment(ref _forgottenSnapshots);
        _snapshots.Clear();
    }

    /// <summary>
    /// The room's new snapshot; workers hear of it when its state or members changed (its forward extremities change with
    /// every event, but only the writer uses them).
    /// </summary>
    private void SetSnapshot(RoomSnapshot snapshot, bool stateChanged)
    {
        _snapshots[snapshot.RoomId] = snapshot;
        if (stateChanged)
            replication.Publish(new Replication.ReplicationMessage.RoomChanged(snapshot.RoomId));
    }

    /// <summary>
    /// Deletes a room from this server (an admin's purge): <paramref name="delete"/> removes its rows in one transaction,
    /// holding the room's lock so no event of it is being written meanwhile; then memory forgets it too.
    /// </summary>
    public async Task DropRoomAsync(string roomId, Func<DbSession, Task> delete, CancellationToken ct)
    {
        using var _ = await locks.AcquireAsync(roomId, ct);
        await db.WriteAsync(delete, ct);
        _snapshots.TryRemove(roomId, out RoomSnapshot? _);
        events.ForgetRoom(roomId);
        rooms.ForgetRecentRows(roomId);
        replication.Publish(new Replication.ReplicationMessage.RoomDropped(roomId));
    }

    /// <summary>
    /// Deletes some of a room's events (an admin's history purge): <paramref name="delete"/> removes their rows in one
    /// transaction under the room's lock and names them, then the cache forgets them.
    /// </summary>
    public async Task<List<string>> DeleteEventsAsync(string roomId, Func<DbSession, Task<List<string>>> delete, CancellationToken ct)
    {
        using var _ = await locks.AcquireAsync(roomId, ct);
        var deleted = await db.WriteAsync(delete, ct);
        events.Forget(deleted);
        rooms.ForgetRecentRows(roomId);
        replication.Publish(new Replication.ReplicationMessage.EventsForgotten(deleted));
        return deleted;
    }

    /// <summary>
    /// Whether the user may be joined to the room as far as memory tells without a read: false only when the room's
    /// loaded snapshot shows they are not.
    /// </summary>
    public bool MayBeJoined(string roomId, string userId) => !_snapshots.TryGetValue(roomId, out var snapshot) || snapshot.JoinedMembers.Contains(userId);

    public async Task<Pdu?> GetStateEventAsync(RoomSnapshot room, StateKey key, CancellationToken ct) =>
        room.StateEventId(key) is { } id ? await events.GetAsync(id, room.Version, ct) : null;

    /// <summary>Creates a room: its <c>m.room.create</c> event, and the room's row, in one transaction.</summary>
    /// <summary>A room ID for a version whose room IDs the server chooses (before 12).</summary>
    public string NewRoomId() => $"!{Accounts.Secrets.NewSessionId()[..18]}:{config.ServerName}";

    /// <param name="roomId">for versions before 12, a room ID chosen beforehand (<see cref="NewRoomId"/>); a new one when null</param>
    public async Task<PersistedEvent> CreateRoomAsync(RoomVersion version, string creator, JsonObject createContent, CancellationToken ct,
        string? roomId = null)
    {
        if (version.RoomIdIsCreateEventHash && roomId is not null)
            throw new ArgumentException("version 12 room IDs are the create event's hash", nameof(roomId));
        long? timestamp = null;
        while (true)
        {
            roomId = version.RoomIdIsCreateEventHash ? null : roomId ?? NewRoomId();
            var json = Build(version, roomId, new NewEvent("m.room.create", "", creator, createContent) { OriginServerTs = timestamp },
                prevEvents: [], depth: 1, authEvents: []);
            var pdu = ParseLocal(json, version);
            var result = EventAuthorizer.Check(pdu, _ => null);
            if (!result.Allowed)
                throw MatrixException.Forbidden(result.Reason);
            using var _ = await locks.AcquireAsync(pdu.RoomId, ct);
            // A version 12 room ID is its create event's hash: the same user creating two rooms alike in one millisecond
            // would make one ID twice, so the later room takes the next millisecond.
            if (version.RoomIdIsCreateEventHash && await GetRoomAsync(pdu.RoomId, ct) is not null)
            {
                timestamp = pdu.OriginServerTs + 1;
                continue;
            }
            return await PersistAsync(null, pdu, new Dictionary<StateKey, string>(), null, Disposition.Accepted, null, ct);
        }
    }

    /// <summary>
    /// Sends a local event. A send with a transaction ID used before is a retry: it answers with the event made then.
    /// The ID is claimed in the event's own transaction (a duplicate key there), so a first send costs no extra query.
    /// </summary>
    public Task<PersistedEvent> SendAsync(string roomId, NewEvent request, CancellationToken ct) =>
        RetryWhenStaleAsync(() => SendOnceAsync(roomId, request, ct));

    private async Task<PersistedEvent> SendOnceAsync(string roomId, NewEvent request, CancellationToken ct)
    {
        using var _ = await locks.AcquireAsync(roomId, ct);
        var room = await GetRoomAsync(roomId, ct) ?? throw MatrixException.Forbidden("You are not in this room.");
        var prevEvents = room.Extremities.OrderByDescending(e => e.Depth).Take(MaxPrevEvents).ToList();
        var depth = Math.Min(prevEvents.Max(e => e.Depth) + 1, CanonicalJson.MaxSafeInteger);
        var authEventIds = AuthEventSelection.Select(room.Version, request.Type, request.StateKey, request.Sender, request.Content, room.StateEventId);
        var json = Build(room.Version, roomId, request, prevEvents.Select(e => e.EventId).ToList(), depth, authEventIds);
        var pdu = ParseLocal(json, room.Version);
        var result = EventAuthorizer.Check(pdu, await LoadStateLookupAsync(room.Version, room.State, pdu, ct));
        if (!result.Allowed)
            // A retry the rules refuse now (the sender has left since) still gets its event.
            return await EarlierSendAsync(room, request, ct) ?? throw MatrixException.Forbidden(result.Reason);
        if (request.BeforePersist is { } beforePersist)
        {
            var amended = await beforePersist(pdu, ct);
            pdu = amended.EventId == pdu.EventId ? amended : throw new MatrixException(502, "M_UNKNOWN", "The event came back changed.");
        }
        var stateBeforeGroup = room.Extremities.Count == 1 ? room.Extremities[0].StateGroup : (long?)null;
        try
        {
            return await PersistAsync(room, pdu, room.State, stateBeforeGroup, Disposition.Accepted, request, ct);
        }
        catch (Exception e) when (request.Transaction is not null && Database.IsDuplicateKey(e, "event_txn_ids"))
        {
            return (await EarlierSendAsync(room, request, ct))!;
        }
    }

    /// <summary>Wakes the syncs of the sender of an event sent with a transaction ID, once the send has been answered (<see cref="UnansweredSends"/>).</summary>
    public void AnnounceToSender(PersistedEvent sent, string deviceId)
    {
        unanswered.Answered(sent.Pdu.Sender, deviceId, sent.StreamOrdering);
        streams.WhenVisible("events", sent.StreamOrdering, () => notifier.Notify([sent.Pdu.Sender]));
    }

    /// <summary>The event an earlier send with the request's transaction ID made, if there was one.</summary>
    private async Task<PersistedEvent?> EarlierSendAsync(RoomSnapshot room, NewEvent request, CancellationToken ct)
    {
        if (request.Transaction is not var (deviceId, txnId))
            return null;
        var existing = await db.ReadAsync(s => rooms.TxnEventAsync(s, request.Sender, deviceId, txnId), ct);
        return existing is null ? null : new PersistedEvent((await events.GetAsync(existing, room.Version, ct))!, 0);
    }

    private async Task<IReadOnlyDictionary<StateKey, string>> ResolveAsync(RoomVersion version, string roomId,
        List<IReadOnlyDictionary<StateKey, string>> states, CancellationToken ct, Pdu? pending = null)
    {
        if (states.Count <= 1)
            return states.Count == 0 ? new Dictionary<StateKey, string>() : states[0];
        var graph = await DbEventGraph.LoadAsync(db, rooms, events, version, states.SelectMany(s => s.Values), pending is null ? [] : [pending], ct);
        return StateResolver.Resolve(version, roomId, states, graph);
    }

    /// <summary>The state events the auth rules may look up for this event, loaded up front (the rules themselves do no I/O).</summary>
    private async Task<Func<StateKey, Pdu?>> LoadStateLookupAsync(RoomVersion version, IReadOnlyDictionary<StateKey, string> state, Pdu pdu, CancellationToken ct)
    {
        // One read for those not cached (a room's first event after its state events left the cache).
        var loaded = await events.StateEventsAsync(state,
            AuthEventSelection.KeysFor(pdu).Append(StateKey.Create).Append(StateKey.JoinRules).Append(StateKey.Member(pdu.Sender)), version, ct);
        return key => loaded.GetValueOrDefault(key);
    }

    private JsonObject Build(RoomVersion version, string? roomId, NewEvent request, IReadOnlyList<string> prevEvents, long depth, IReadOnlyList<string> authEvents)
    {
        var content = (JsonObject)request.Content.DeepClone();
        var json = new JsonObject
        {
            ["type"] = request.Type,
            ["sender"] = request.Sender,
            ["content"] = content,
            ["origin_server_ts"] = request.OriginServerTs ?? clock.GetUtcNow().ToUnixTimeMilliseconds(),
            ["depth"] = depth,
            ["prev_events"] = References(version, prevEvents),
            ["auth_events"] = References(version, authEvents),
        };
        if (roomId is not null)
            json["room_id"] = roomId;
        if (request.StateKey is not null)
            json["state_key"] = request.StateKey;
        if (request.Redacts is not null)
        {
            if (version.RedactsInContent)
                content["redacts"] = request.Redacts;
            else
                json["redacts"] = request.Redacts;
        }
        if (!version.ImplicitRoomCreator)
            json["origin"] = config.ServerName;
        if (version.EventIdFormat == EventIdFormat.ServerChosen)
            json["event_id"] = $"${Accounts.Secrets.NewSessionId()}:{config.ServerName}";
        EventSigning.HashAndSign(json, version, config.ServerName, signingKey);
        return json;
    }

    /// <summary>v1-v2 cite events as <c>[id, {sha256}]</c> with the cited event's reference hash; later versions by ID.</summary>
    private JsonArray References(RoomVersion version, IEnumerable<string> ids)
    {
        var array = new JsonArray();
        foreach (var id in ids)
        {
            if (version.EventIdFormat != EventIdFormat.ServerChosen)
            {
                array.Add(JsonValue.Create(id));
                continue;
            }
            var cited = events.TryGet(id);
            var hash = cited is null ? "" : UnpaddedBase64.Encode(EventHashes.ReferenceHash(cited.Json, version));
            array.Add(new JsonArray(id, new JsonObject { ["sha256"] = hash }));
        }
        return array;
    }

    private static Pdu ParseLocal(JsonObject json, RoomVersion version)
    {
        if (PduParser.TryParse(json, version, out var pdu, out var error))
            return pdu;
        if (error.Contains("larger than", StringComparison.Ordinal))
            throw MatrixException.TooLarge($"Event is larger than {PduParser.MaxPduBytes} bytes.");
        throw MatrixException.BadJson(error);
    }

    /// <summary>Whether a user of this server is joined to the room (events of rooms it is not in do not reach it).</summary>
    public async Task<bool> IsInRoomAsync(string roomId, CancellationToken ct) =>
        await GetRoomAsync(roomId, ct) is { } room && room.JoinedServers.Contains(config.ServerName);

    private enum Disposition { Accepted, SoftFailed, Rejected }

    /// <summary>
    /// Spec (room versions 3 and later): the auth rules let any redaction through; it takes effect only on an event from
    /// its sender's own server, or when its sender may redact others' events (for an event not here, marking is a no-op).
    /// </summary>
    private async Task<bool> RedactionTakesEffectAsync(Pdu redaction, string targetId, IReadOnlyDictionary<StateKey, string> state, CancellationToken ct)
    {
        if (await db.ReadAsync(s => rooms.GetEventAsync(s, targetId), ct) is not { } target)
            return true;
        if (EventSigning.ServerOf(target.Sender) == EventSigning.ServerOf(redaction.Sender))
            return true;
        var version = redaction.Version;
        var create = state.TryGetValue(StateKey.Create, out var createId) ? await events.GetAsync(createId, version, ct)
            : version.RoomIdIsCreateEventHash ? await events.GetAsync("$" + redaction.RoomId[1..], version, ct) : null;
        if (create is null)
            return false;
        var levels = state.TryGetValue(StateKey.PowerLevels, out var levelsId) ? await events.GetAsync(levelsId, version, ct) : null;
        var powers = new RoomPowers(create, levels);
        return powers.UserLevel(redaction.Sender) >= powers.Levels.Redact;
    }

    /// <summary>
    /// Writes the event with its state group; an accepted event also becomes a forward extremity (replacing its prev
    /// events) and moves the current state to the resolution of the extremities' states.
    /// </summary>
    private async Task<PersistedEvent> PersistAsync(RoomSnapshot? room, Pdu pdu, IReadOnlyDictionary<StateKey, string> stateBefore, long? stateBeforeGroup,
        Disposition disposition, NewEvent? request, CancellationToken ct)
    {
        var accepted = disposition == Disposition.Accepted;
        var stateAfter = stateBefore;
        if (pdu.IsState && disposition != Disposition.Rejected)
            stateAfter = new Dictionary<StateKey, string>(stateBefore) { [pdu.StateKeyPair] = pdu.EventId };

        var extremities = room?.Extremities ?? [];
        var remaining = accepted ? extremities.Where(e => !pdu.PrevEvents.Contains(e.EventId)).ToList() : extremities.ToList();
        IReadOnlyDictionary<StateKey, string> newCurrent = room?.State ?? new Dictionary<StateKey, string>();
        if (accepted)
        {
            var states = new List<IReadOnlyDictionary<StateKey, string>> { stateAfter };
            foreach (var other in remaining)
                states.Add(await db.ReadAsync(s => stateGroups.LoadAsync(s, other.StateGroup), ct));
            newCurrent = await ResolveAsync(pdu.Version, pdu.RoomId, states, ct, pending: pdu);
        }
        // Without a group holding exactly the state before, a new one is stored as a delta on an extremity's group.
        var baseGroup = room?.Extremities.Count > 0 ? room.Extremities[0].StateGroup : (long?)null;
        var baseState = stateBeforeGroup is null && baseGroup is { } g
            ? await db.ReadAsync(s => stateGroups.LoadAsync(s, g), ct)
            : new Dictionary<StateKey, string>();
        var currentChanges = accepted ? await CurrentStateChangesAsync(pdu, room?.State, newCurrent, ct) : [];
        var redacts = accepted && pdu.Redacts is { } target && await RedactionTakesEffectAsync(pdu, target, stateBefore, ct) ? target : null;
        var now = clock.GetUtcNow().ToUnixTimeMilliseconds();
        var snapshotAfter = new RoomSnapshot(pdu.RoomId, pdu.Version, newCurrent, remaining,
            RoomSnapshot.Members(room?.JoinedMembers ?? new HashSet<string>(), currentChanges, "join"),
            RoomSnapshot.Members(room?.InvitedMembers ?? new HashSet<string>(), currentChanges, "invite"));

        var (ordering, stateGroup) = await db.WriteAsync(async s =>
        {
            if (config.Worker.SharesEvents)
                await EnsureCurrentAsync(s, pdu.RoomId, room);
            if (room is null)
                await rooms.InsertRoomAsync(s, new RoomRow(pdu.RoomId, pdu.Version.Id, pdu.Sender, 0, now));
            var ordering = await streams.NextAsync(s, "events");
            var beforeGroup = stateBeforeGroup ?? await stateGroups.CreateAsync(s, pdu.RoomId, baseGroup, baseState, stateBefore);
            var group = ReferenceEquals(stateAfter, stateBefore) ? beforeGroup : await stateGroups.CreateAsync(s, pdu.RoomId, beforeGroup, stateBefore, stateAfter);
            await rooms.InsertEventAsync(s, new EventRow(ordering, pdu.EventId, pdu.RoomId, pdu.Type, pdu.StateKey, pdu.Sender, pdu.Depth,
                pdu.OriginServerTs, group, null, pdu.CanonicalText(),
                Rejected: disposition == Disposition.Rejected ? 1 : 0, SoftFailed: disposition == Disposition.SoftFailed ? 1 : 0), pdu);
            if (accepted)
            {
                await rooms.AdvanceExtremitiesAsync(s, pdu.RoomId, pdu.PrevEvents, new Extremity(pdu.EventId, pdu.Depth, group));
                foreach (var (key, eventId, membership) in currentChanges)
                    if (eventId is null)
                        await rooms.DeleteCurrentStateAsync(s, pdu.RoomId, key.Type, key.Key);
                    else
                        await rooms.SetCurrentStateAsync(s, pdu.RoomId, key.Type, key.Key, eventId, membership);
                if (redacts is not null)
                    await rooms.MarkRedactedAsync(s, redacts, pdu.EventId, pdu.RoomId);
            }
            if (request?.Transaction is var (deviceId, txnId))
            {
                await rooms.InsertTxnAsync(s, pdu.Sender, deviceId, txnId, pdu.EventId, now);
                unanswered.Add(s, pdu.Sender, deviceId, ordering, relatesToAnother: pdu.Content.ContainsKey("m.relates_to"));
            }
            if (accepted)
                foreach (var listener in listeners)
                    await listener.OnPersistingAsync(s, pdu, ordering, snapshotAfter, room);
            return (ordering, group);
        }, ct);
        if (!ReferenceEquals(stateAfter, stateBefore))
            groups.Remember(stateGroup, stateAfter);

        events.Add(pdu);
        if (!accepted)
            return new PersistedEvent(pdu, ordering);
        var snapshot = snapshotAfter with { Extremities = [.. remaining, new Extremity(pdu.EventId, pdu.Depth, stateGroup)] };
        SetSnapshot(snapshot, stateChanged: currentChanges.Count > 0);
        // The sender of a client send (one with a transaction ID) is woken once the send is answered (AnnounceToSender):
        // clients match the copy their sync brings to the send they are waiting on, and some trip over it arriving first.
        // The room's ID too: it wakes those listening to the room without being in it (GET /events?room_id= peeks).
        var concerned = snapshot.MemberUserIds.Concat(room?.MemberUserIds ?? []).Distinct()
            .Where(user => request?.Transaction is null || user != request.Sender).Append(pdu.RoomId).ToList();
        streams.WhenVisible("events", ordering, () => notifier.Notify(concerned));
        foreach (var listener in listeners)
            listener.OnPersisted(pdu, snapshot);
        return new PersistedEvent(pdu, ordering);
    }

    /// <summary>Another process wrote to the room since this one's snapshot of it was taken (several event writers).</summary>
    private sealed class StaleRoomException() : MatrixException(503, "M_UNKNOWN", "The room changed while the event was being written; try again.");

    /// <summary>
    /// With several event writers: holds the room (a PostgreSQL lock until the transaction ends, so no other process
    /// writes to it meanwhile) and checks that the snapshot the event was made against is still the room's (its forward
    /// extremities move with every accepted event); when not, the snapshot goes and the caller tries again.
    /// </summary>
    private async Task EnsureCurrentAsync(DbSession s, string roomId, RoomSnapshot? room)
    {
        await s.ExecuteAsync("SELECT pg_advisory_xact_lock(7345100, hashtext(@roomId))", new { roomId });
        var stored = await rooms.ExtremitiesAsync(s, roomId);
        var known = room?.Extremities ?? [];
        if (stored.Count == known.Count && stored.All(e => known.Any(k => k.EventId == e.EventId)))
            return;
        ForgetSnapshot(roomId);
        throw new StaleRoomException();
    }

    /// <summary>
    /// Makes an event again, from the room as it is now, when another process wrote to the room meanwhile; processes
    /// writing to one room at once (the balancer sends each room's sends to one, so this is rare) back off a little
    /// more each time, at random, so that one gets through after another.
    /// </summary>
    private static async Task<T> RetryWhenStaleAsync<T>(Func<Task<T>> attempt)
    {
        for (var tries = 1; ; tries++)
            try
            {
                return await attempt();
            }
            catch (StaleRoomException) when (tries < 50)
            {
                await Task.Delay(Random.Shared.Next(tries * 2));
            }
    }

    /// <summary>The current-state rows to write (event ID null: the key left the state), with memberships for member events.</summary>
    private async Task<List<(StateKey Key, string? EventId, string? Membership)>> CurrentStateChangesAsync(Pdu newEvent,
        IReadOnlyDictionary<StateKey, string>? before, IReadOnlyDictionary<StateKey, string> after, CancellationToken ct)
    {
        var changes = new List<(StateKey, string?, string?)>();
        foreach (var (key, eventId) in after)
        {
            if (before is not null && before.TryGetValue(key, out var old) && old == eventId)
                continue;
            var membership = key.Type != "m.room.member" ? null
                : eventId == newEvent.EventId ? newEvent.Membership
                : (await events.GetAsync(eventId, newEvent.Version, ct))?.Membership;
            changes.Add((key, eventId, membership));
        }
        if (before is not null)
            changes.AddRange(before.Keys.Where(k => !after.ContainsKey(k)).Select(k => (k, (string?)null, (string?)null)));
        return changes;
    }
}
