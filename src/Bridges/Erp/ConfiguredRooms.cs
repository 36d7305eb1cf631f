using Matrix.AppServices.Sdk;

namespace Matrix.Bridges.Erp;

/// <summary>
/// The rooms the config names (IDs or aliases) and what uses each: hooks (their system's user posts there),
/// subscriptions and commands (the bridge's own user listens there) and feeds (the bridge's own user posts there).
/// Each is resolved and joined by the users it needs at start and again whenever one of them is invited. A room that
/// cannot be used yet (an alias naming no room, a room its users were not invited to) is reported by name with what
/// uses it, and the other rooms keep working.
/// </summary>
public sealed class ConfiguredRooms
{
    private readonly AppService _service;
    private readonly Dictionary<string, List<(string Use, string UserId)>> _needs = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _ids = new(StringComparer.Ordinal);
    private readonly Lock _lock = new();

    public ConfiguredRooms(ErpBridgeConfig config, AppService service)
    {
        _service = service;
        var bot = service.Registration.SenderUserId;
        foreach (var hook in config.Hooks)
            Need(hook.Room, $"hook {hook.Id}", config.UserId(hook.System));
        foreach (var (subscription, i) in config.Subscriptions.Select((s, i) => (s, i)))
            Need(subscription.Room, $"subscriptions[{i}]", bot);
        foreach (var command in config.Commands)
            foreach (var room in command.Rooms)
                Need(room, $"command {command.Name}", bot);
        foreach (var feed in config.Feeds)
            Need(feed.Room, $"feed {feed.Id}", bot);
    }

    private void Need(string room, string use, string userId)
    {
        if (!_needs.TryGetValue(room, out var needs))
            _needs[room] = needs = [];
        needs.Add((use, userId));
        if (room.StartsWith('!'))
            _ids[room] = room;
    }

    /// <summary>A configured room became unusable or stays so: which, what uses it, why, and what to do.</summary>
    public event Action<string>? Problem;

    /// <summary>The room ID a configured room (ID or alias) stands for, when known.</summary>
    public string? IdOf(string room)
    {
        lock (_lock)
            return _ids.GetValueOrDefault(room);
    }

    /// <summary>Whether <paramref name="roomId"/> is the room <paramref name="room"/> names.</summary>
    public bool Names(string room, string roomId) => IdOf(room) == roomId;

    /// <summary>What uses a configured room, for messages: <c>hook orders, subscriptions[0]</c>.</summary>
    public string UsesOf(string room) => string.Join(", ", (_needs.GetValueOrDefault(room) ?? []).Select(n => n.Use).Distinct());

    /// <summary>Prepares every configured room; those that cannot be used yet are reported, the rest are ready.</summary>
    public async Task PrepareAllAsync(CancellationToken ct)
    {
        foreach (var room in _needs.Keys)
            await PrepareAsync(room, ct);
    }

    /// <summary>Resolves the room and joins the users it needs; false (reported) when it cannot be used yet.</summary>
    public async Task<bool> PrepareAsync(string room, CancellationToken ct)
    {
        if (await ResolveAsync(room, ct) is not { } roomId)
        {
            Problem?.Invoke($"room {room} ({UsesOf(room)}): the alias names no room; correct it in the config or create the alias");
            return false;
        }
        foreach (var userId in _needs[room].Select(n => n.UserId).Distinct())
            try
            {
                await _service.Intent(userId).EnsureJoinedAsync(roomId, ct);
            }
            catch (MatrixRequestException e)
            {
                Problem?.Invoke($"room {room} ({UsesOf(room)}): {userId} cannot join ({e.Errcode ?? e.Status.ToString()}: {e.Message}); "
                    + $"invite {_service.Registration.SenderUserId} (or {userId}) to the room");
                return false;
            }
        return true;
    }

    /// <summary>The room ID a room ID or alias stands for, asking the homeserver for an alias not yet resolved; null when it names none.</summary>
    public async Task<string?> ResolveAsync(string room, CancellationToken ct)
    {
        if (room.StartsWith('!'))
            return room;
        if (IdOf(room) is { } known)
            return known;
        var roomId = await _service.Bot.ResolveAliasAsync(room, ct);
        if (roomId is not null)
            lock (_lock)
                _ids[room] = roomId;
        return roomId;
    }

    /// <summary>The configured rooms that <paramref name="roomId"/> is (aliases not yet resolved are asked again).</summary>
    public async Task<IReadOnlyList<string>> ConfiguredAsAsync(string roomId, CancellationToken ct)
    {
        var rooms = new List<string>();
        foreach (var room in _needs.Keys)
            if (await ResolveAsync(room, ct) == roomId)
                rooms.Add(room);
        return rooms;
    }
}
