using System.Text.Json;
using System.Text.Json.Nodes;

namespace Matrix.AppServices.Sdk;

/// <summary>
/// The small state a bridge keeps between runs, in one JSON file replaced atomically (so a crash leaves an old or a
/// new state, never half of one): which of its users are registered, which rooms they are joined to (so intents skip
/// needless requests), and string values by namespace (room mappings, sync cursors). Changes are written at most
/// once per <see cref="SaveInterval"/> and by <see cref="Flush"/>: what a crash loses is a cache of facts the
/// homeserver still has (a lost registration is redone as "user in use", a lost join as a no-op). Without a path it
/// lives in memory only.
/// </summary>
public sealed class BridgeStateStore
{
    private readonly string? _path;
    private readonly Lock _lock = new();
    private readonly HashSet<string> _registered = new(StringComparer.Ordinal);
    private readonly Dictionary<string, HashSet<string>> _joined = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Dictionary<string, string>> _values = new(StringComparer.Ordinal);
    private long _lastSave;
    private bool _dirty;

    public static readonly TimeSpan SaveInterval = TimeSpan.FromSeconds(1);

    public BridgeStateStore(string? path = null)
    {
        _path = path;
        if (path is null || !File.Exists(path))
            return;
        var root = JsonNode.Parse(File.ReadAllText(path)) as JsonObject
            ?? throw new InvalidDataException($"{path}: the bridge state is not a JSON object");
        foreach (var user in root["registered"] as JsonArray ?? [])
            _registered.Add(user!.GetValue<string>());
        foreach (var (roomId, users) in root["joined"] as JsonObject ?? [])
            _joined[roomId] = (users as JsonArray ?? []).Select(u => u!.GetValue<string>()).ToHashSet(StringComparer.Ordinal);
        foreach (var (ns, values) in root["values"] as JsonObject ?? [])
            _values[ns] = (values as JsonObject ?? []).ToDictionary(p => p.Key, p => p.Value!.GetValue<string>(), StringComparer.Ordinal);
    }

    public bool IsRegistered(string userId)
    {
        lock (_lock)
            return _registered.Contains(userId);
    }

    public void MarkRegistered(string userId) => Change(() => _registered.Add(userId));

    /// <summary>Forgets a user: not registered, joined nowhere (after a deactivation).</summary>
    public void Forget(string userId) => Change(() =>
    {
        var changed = _registered.Remove(userId);
        foreach (var (roomId, users) in _joined.ToList())
            if (users.Remove(userId))
            {
                changed = true;
                if (users.Count == 0)
                    _joined.Remove(roomId);
            }
        return changed;
    });

    public bool IsJoined(string roomId, string userId)
    {
        lock (_lock)
            return _joined.TryGetValue(roomId, out var users) && users.Contains(userId);
    }

    /// <summary>Records a membership of one of the service's users: joined, or not (left, kicked, banned, invited).</summary>
    public void SetJoined(string roomId, string userId, bool joined) => Change(() =>
    {
        if (joined)
            return (_joined.TryGetValue(roomId, out var users) ? users : _joined[roomId] = new HashSet<string>(StringComparer.Ordinal)).Add(userId);
        if (!_joined.TryGetValue(roomId, out var members) || !members.Remove(userId))
            return false;
        if (members.Count == 0)
            _joined.Remove(roomId);
        return true;
    });

    public IReadOnlyList<string> JoinedRooms(string userId)
    {
        lock (_lock)
            return _joined.Where(p => p.Value.Contains(userId)).Select(p => p.Key).ToList();
    }

    public string? Get(string ns, string key)
    {
        lock (_lock)
            return _values.TryGetValue(ns, out var values) && values.TryGetValue(key, out var value) ? value : null;
    }

    /// <summary>Sets a value, or removes it when <paramref name="value"/> is null.</summary>
    public void Set(string ns, string key, string? value) => Change(() =>
    {
        if (value is null)
            return _values.TryGetValue(ns, out var existing) && existing.Remove(key);
        var values = _values.TryGetValue(ns, out var found) ? found : _values[ns] = new Dictionary<string, string>(StringComparer.Ordinal);
        if (values.TryGetValue(key, out var old) && old == value)
            return false;
        values[key] = value;
        return true;
    });

    public IReadOnlyDictionary<string, string> All(string ns)
    {
        lock (_lock)
            return _values.TryGetValue(ns, out var values) ? new Dictionary<string, string>(values, StringComparer.Ordinal) : new Dictionary<string, string>();
    }

    private void Change(Func<bool> change)
    {
        lock (_lock)
        {
            if (!change() || _path is null)
                return;
            _dirty = true;
            if (Environment.TickCount64 - _lastSave >= SaveInterval.TotalMilliseconds)
                Save(_path);
        }
    }

    /// <summary>Writes pending changes now (at the end of a run, at shutdown).</summary>
    public void Flush()
    {
        lock (_lock)
            if (_dirty && _path is not null)
                Save(_path);
    }

    private void Save(string path)
    {
        var root = new JsonObject
        {
            ["registered"] = new JsonArray(_registered.Order(StringComparer.Ordinal).Select(u => (JsonNode?)u).ToArray()),
            ["joined"] = new JsonObject(_joined.Select(p => KeyValuePair.Create(p.Key,
                (JsonNode?)new JsonArray(p.Value.Order(StringComparer.Ordinal).Select(u => (JsonNode?)u).ToArray())))),
            ["values"] = new JsonObject(_values.Select(p => KeyValuePair.Create(p.Key,
                (JsonNode?)new JsonObject(p.Value.Select(v => KeyValuePair.Create(v.Key, (JsonNode?)v.Value)))))),
        };
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        var temporary = path + ".tmp";
        using (var file = new FileStream(temporary, FileMode.Create, FileAccess.Write))
        {
            JsonSerializer.Serialize(file, root);
            file.Flush(flushToDisk: true);
        }
        File.Move(temporary, path, overwrite: true);
        _dirty = false;
        _lastSave = Environment.TickCount64;
    }
}
