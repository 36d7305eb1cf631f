using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using Matrix.Federation.Auth;
using Matrix.Federation.Crypto;
using Matrix.Federation.Events;
using Matrix.Federation.Json;
using Matrix.Federation.Rooms;
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
}

public sealed record PersistedEvent(Pdu Pdu, long StreamOrdering);

/// <summary>
/// The one pipeline every event goes through: build -> sign -> check format and auth against the room state ->
/// persist event, state and stream position in one transaction -> update the in-memory room -> wake syncs.
/// Events of one room are processed one at a time (<see cref="RoomLocks"/>).
/// </summary>
public sealed class EventSpine(
    Database db, RoomStore rooms, StreamPositions streams, StateGroupStore stateGroups, EventCache events, RoomLocks locks, SyncNotifier notifier,
    HomeserverConfig config, Ed25519KeyPair signingKey, TimeProvider clock)
{
    private readonly ConcurrentDictionary<string, RoomSnapshot> _snapshots = new(StringComparer.Ordinal);

    /// <summary>The room's current snapshot, or null when this server does not know the room.</summary>
    public async Task<RoomSnapshot?> GetRoomAsync(string roomId, CancellationToken ct)
    {
        if (_snapshots.TryGetValue(roomId, out var snapshot))
            return snapshot;
        snapshot = await db.ReadAsync(async s =>
        {
            var room = await rooms.GetRoomAsync(s, roomId);
            var head = room is null ? null : await rooms.GetHeadAsync(s, roomId);
            if (room is null || head is null || RoomVersions.Find(room.RoomVersion) is not { } version)
                return null;
            var state = (await rooms.CurrentStateAsync(s, roomId)).ToDictionary(r => new StateKey(r.Type, r.StateKey), r => r.EventId);
            return new RoomSnapshot(roomId, version, state, head.EventId, head.Depth, head.StateGroup);
        }, ct);
        return snapshot is null ? null : _snapshots.GetOrAdd(roomId, snapshot);
    }

    public async Task<Pdu?> GetStateEventAsync(RoomSnapshot room, StateKey key, CancellationToken ct) =>
        room.StateEventId(key) is { } id ? await events.GetAsync(id, room.Version, ct) : null;

    /// <summary>Creates a room: its <c>m.room.create</c> event, and the room's row, in one transaction.</summary>
    public async Task<PersistedEvent> CreateRoomAsync(RoomVersion version, string creator, JsonObject createContent, CancellationToken ct)
    {
        var roomId = version.RoomIdIsCreateEventHash ? null : $"!{Accounts.Secrets.NewSessionId()[..18]}:{config.ServerName}";
        var json = Build(version, roomId, new NewEvent("m.room.create", "", creator, createContent), prevEvents: [], depth: 1, authEvents: []);
        var pdu = Parse(json, version);
        var result = EventAuthorizer.Check(pdu, _ => null);
        if (!result.Allowed)
            throw MatrixException.Forbidden(result.Reason);
        using var _ = await locks.AcquireAsync(pdu.RoomId, ct);
        return await PersistAsync(null, pdu, null, isNewRoom: true, ct);
    }

    public async Task<PersistedEvent> SendAsync(string roomId, NewEvent request, CancellationToken ct)
    {
        using var _ = await locks.AcquireAsync(roomId, ct);
        var room = await GetRoomAsync(roomId, ct) ?? throw MatrixException.Forbidden("You are not in this room.");
        if (request.Transaction is var (deviceId, txnId))
        {
            var existing = await db.ReadAsync(s => rooms.TxnEventAsync(s, request.Sender, deviceId, txnId), ct);
            if (existing is not null)
                return new PersistedEvent((await events.GetAsync(existing, room.Version, ct))!, 0);
        }

        var authEventIds = AuthEventSelection.Select(room.Version, request.Type, request.StateKey, request.Sender, request.Content, room.StateEventId);
        var json = Build(room.Version, roomId, request, [room.HeadEventId], room.HeadDepth + 1, authEventIds);
        var pdu = Parse(json, room.Version);
        var authState = await LoadAuthStateAsync(room, pdu, ct);
        var result = EventAuthorizer.Check(pdu, key => authState.GetValueOrDefault(key));
        if (!result.Allowed)
            throw MatrixException.Forbidden(result.Reason);
        return await PersistAsync(room, pdu, request, isNewRoom: false, ct);
    }

    private async Task<Dictionary<StateKey, Pdu>> LoadAuthStateAsync(RoomSnapshot room, Pdu pdu, CancellationToken ct)
    {
        var state = new Dictionary<StateKey, Pdu>();
        foreach (var key in AuthEventSelection.KeysFor(pdu).Append(StateKey.Create).Append(StateKey.JoinRules).Append(StateKey.Member(pdu.Sender)))
            if (!state.ContainsKey(key) && await GetStateEventAsync(room, key, ct) is { } stateEvent)
                state[key] = stateEvent;
        return state;
    }

    private JsonObject Build(RoomVersion version, string? roomId, NewEvent request, IReadOnlyList<string> prevEvents, long depth, IReadOnlyList<string> authEvents)
    {
        var content = (JsonObject)request.Content.DeepClone();
        var json = new JsonObject
        {
            ["type"] = request.Type,
            ["sender"] = request.Sender,
            ["content"] = content,
            ["origin_server_ts"] = clock.GetUtcNow().ToUnixTimeMilliseconds(),
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

    private static JsonArray References(RoomVersion version, IEnumerable<string> ids)
    {
        var array = new JsonArray();
        foreach (var id in ids)
            array.Add(version.EventIdFormat == EventIdFormat.ServerChosen
                ? new JsonArray(id, new JsonObject { ["sha256"] = "" })
                : JsonValue.Create(id));
        return array;
    }

    private static Pdu Parse(JsonObject json, RoomVersion version)
    {
        if (PduParser.TryParse(json, version, out var pdu, out var error))
            return pdu;
        if (error.Contains("larger than", StringComparison.Ordinal))
            throw MatrixException.TooLarge($"Event is larger than {PduParser.MaxPduBytes} bytes.");
        throw MatrixException.BadJson(error);
    }

    private async Task<PersistedEvent> PersistAsync(RoomSnapshot? room, Pdu pdu, NewEvent? request, bool isNewRoom, CancellationToken ct)
    {
        var stateBefore = room?.State ?? new Dictionary<StateKey, string>();
        var stateAfter = stateBefore;
        if (pdu.IsState)
            stateAfter = new Dictionary<StateKey, string>(stateBefore) { [pdu.StateKeyPair] = pdu.EventId };
        var now = clock.GetUtcNow().ToUnixTimeMilliseconds();

        var (ordering, stateGroup) = await db.WriteAsync(async s =>
        {
            if (isNewRoom)
                await rooms.InsertRoomAsync(s, new RoomRow(pdu.RoomId, pdu.Version.Id, pdu.Sender, 0, now));
            var ordering = await streams.NextAsync(s, "events");
            var group = room?.HeadStateGroup ?? 0;
            if (pdu.IsState)
            {
                group = await stateGroups.CreateAsync(s, pdu.RoomId, room?.HeadStateGroup, stateBefore, stateAfter);
                await rooms.SetCurrentStateAsync(s, pdu.RoomId, pdu.Type, pdu.StateKey!, pdu.EventId, pdu.Membership);
            }
            await rooms.InsertEventAsync(s, new EventRow(ordering, pdu.EventId, pdu.RoomId, pdu.Type, pdu.StateKey, pdu.Sender, pdu.Depth,
                pdu.OriginServerTs, group, null, CanonicalJson.EncodeToString(pdu.Json)));
            await rooms.SetHeadAsync(s, pdu.RoomId, new RoomHeadRow(pdu.EventId, pdu.Depth, group));
            if (request?.Transaction is var (deviceId, txnId))
                await rooms.InsertTxnAsync(s, pdu.Sender, deviceId, txnId, pdu.EventId, now);
            if (pdu.Redacts is { } redacted)
                await rooms.MarkRedactedAsync(s, redacted, pdu.EventId);
            return (ordering, group);
        }, ct);

        events.Add(pdu);
        var snapshot = new RoomSnapshot(pdu.RoomId, pdu.Version, stateAfter, pdu.EventId, pdu.Depth, stateGroup);
        _snapshots[pdu.RoomId] = snapshot;
        var concerned = snapshot.MemberUserIds.ToList();
        notifier.Notify(concerned);
        return new PersistedEvent(pdu, ordering);
    }
}
