using System.Collections.Immutable;
using System.Text.Json.Nodes;
using Matrix.Homeserver.AccountData;
using Matrix.Homeserver.Accounts;
using Matrix.Homeserver.Http;
using Matrix.Homeserver.Observability;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Sync.SlidingSync;

/// <summary>
/// Simplified sliding sync (MSC4186): the rooms of the request's lists (ranges of the user's filtered rooms, by
/// recent activity) and subscriptions that are new to the connection or changed since it last sent them, with the
/// extensions; long-polling on the same notifier as <c>/sync</c> when there is nothing to send.
/// </summary>
public sealed class SlidingSyncService(
    SlidingRoomList roomList, SlidingRoomBuilder builder, SlidingSyncExtensionBuilder extensionBuilder, SlidingSyncConnections connections,
    SyncService sync, SyncNotifier notifier, Database db, Push.PushActionStore pushActions, IgnoredUsers ignoredUsers)
{
    private const int RoomsBuiltInParallel = 8;

    private sealed record Built(JsonObject Response, ImmutableDictionary<string, SentRoom> Sent, SyncToken Streams, bool Empty);

    public static MatrixException UnknownPos() => new(400, "M_UNKNOWN_POS", "Unknown or expired pos: start the connection over.");

    public async Task<JsonObject> SyncAsync(Requester requester, SlidingSyncRequest request, CancellationToken ct)
    {
        var user = requester.UserId.Value;
        SlidingSyncPos? pos = null;
        var sent = ImmutableDictionary.Create<string, SentRoom>(StringComparer.Ordinal);
        if (request.Pos is { } text)
        {
            pos = SlidingSyncPos.TryParse(text) ?? throw UnknownPos();
            sent = connections.Resume(user, requester.DeviceId, request.ConnId, pos.Value.Position) ?? throw UnknownPos();
        }
        var waiter = notifier.Register(user, out var unregister);
        try
        {
            var built = await BuildAsync(requester, request, pos?.Streams, sent, ct);
            if (built.Empty && pos is not null && request.TimeoutMs > 0)
            {
                await notifier.WaitAsync(waiter, TimeSpan.FromMilliseconds(request.TimeoutMs), ServerMetrics.SlidingSyncLongPoll, ct);
                built = await BuildAsync(requester, request, pos?.Streams, sent, ct);
            }
            var position = connections.Save(user, requester.DeviceId, request.ConnId, built.Sent, restart: pos is null);
            built.Response["pos"] = new SlidingSyncPos(position, built.Streams).ToString();
            return built.Response;
        }
        finally
        {
            unregister();
        }
    }

    private async Task<Built> BuildAsync(Requester requester, SlidingSyncRequest request, SyncToken? from, ImmutableDictionary<string, SentRoom> sent,
        CancellationToken ct)
    {
        var user = requester.UserId.Value;
        var streams = await sync.CurrentPositionsAsync(ct);
        // A connection for extensions alone (matrix-rust-sdk keeps one for encryption) has no use for the room list.
        var userRooms = request.Lists.Count + request.Subscriptions.Count > 0
            ? await roomList.LoadAsync(user, from?.Events, ct)
            : SlidingRoomList.UserRooms.Empty;

        var configs = new Dictionary<string, RoomConfig>(StringComparer.Ordinal);
        void Include(string roomId, RoomConfig config) => configs[roomId] = configs.TryGetValue(roomId, out var other) ? other.Merge(config) : config;
        var lists = new JsonObject();
        var listRooms = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        foreach (var (name, list) in request.Lists)
        {
            var matching = await roomList.FilterAsync(userRooms, user, list.Filters, ct);
            var ops = new JsonArray();
            var inRange = new List<string>();
            foreach (var (start, end) in list.Ranges ?? (matching.Count > 0 ? [(0, matching.Count - 1)] : []))
            {
                var ids = matching.Skip(start).Take(end - start + 1).Select(e => e.RoomId).ToList();
                ops.Add(new JsonObject
                {
                    ["op"] = "SYNC",
                    ["range"] = new JsonArray(start, end),
                    ["room_ids"] = new JsonArray(ids.Select(id => (JsonNode)id).ToArray()),
                });
                inRange.AddRange(ids);
            }
            foreach (var roomId in inRange)
                Include(roomId, list.Room);
            listRooms[name] = inRange;
            lists[name] = new JsonObject { ["count"] = matching.Count, ["ops"] = ops };
        }
        // Subscriptions name rooms the user is or was in; any other room is ignored (MSC4186), as if never asked for.
        var subscribed = request.Subscriptions.Where(s => userRooms.ById.ContainsKey(s.Key)).ToList();
        foreach (var (roomId, config) in subscribed)
            Include(roomId, config);

        var entries = configs.Keys.Select(id => userRooms.ById[id]).OrderByDescending(e => e.Activity).ToList();
        var joined = entries.Where(e => e.IsJoined).Select(e => e.RoomId).ToList();
        var unread = joined.Count == 0 ? [] : await db.ReadAsync(s => s.QueryAsync(pushActions.Unread(user, joined)), ct);
        var context = new SlidingRoomBuilder.Context(requester, from, streams.Events, userRooms.DirectRooms, await ignoredUsers.OfAsync(user, ct),
            unread.ToLookup(u => u.RoomId));
        using var building = new SemaphoreSlim(RoomsBuiltInParallel);
        var builds = entries.Select(async entry =>
        {
            await building.WaitAsync(ct);
            try
            {
                return await builder.BuildAsync(context, entry, configs[entry.RoomId], sent.GetValueOrDefault(entry.RoomId), ct);
            }
            finally
            {
                building.Release();
            }
        }).ToList();
        var rooms = new JsonObject();
        var nowSent = sent.ToBuilder();
        var timelines = new Dictionary<string, IReadOnlyList<string>>(StringComparer.Ordinal);
        for (var i = 0; i < entries.Count; i++)
        {
            var built = await builds[i];
            if (!ReferenceEquals(built.Sent, sent.GetValueOrDefault(entries[i].RoomId)))
                nowSent[entries[i].RoomId] = built.Sent;
            if (built.Response is { } room)
            {
                rooms[entries[i].RoomId] = room;
                timelines[entries[i].RoomId] = built.TimelineEventIds;
            }
        }

        var subscribedIds = subscribed.Select(s => s.Key).ToList();
        IReadOnlyCollection<string> RoomsOf(ExtensionScope scope) =>
            scope.Lists.SelectMany(name => name == "*" ? listRooms.Values.SelectMany(r => r) : listRooms.GetValueOrDefault(name) ?? [])
                .Concat(scope.Rooms.SelectMany(id => id == "*" ? subscribedIds : subscribedIds.Where(s => s == id)))
                .ToHashSet(StringComparer.Ordinal);
        var newRooms = rooms.Where(r => r.Value?["initial"] is not null).Select(r => r.Key).ToHashSet(StringComparer.Ordinal);
        var (extensions, extensionNews) = await extensionBuilder.BuildAsync(requester, request.Extensions, from, streams,
            new SlidingSyncExtensionBuilder.Rooms(RoomsOf, newRooms, timelines), ct);
        var response = new JsonObject { ["lists"] = lists, ["rooms"] = rooms, ["extensions"] = extensions };
        return new Built(response, nowSent.ToImmutable(), streams, rooms.Count == 0 && !extensionNews);
    }
}
