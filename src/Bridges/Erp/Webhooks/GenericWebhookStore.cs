using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Matrix.AppServices.Sdk;

namespace Matrix.Bridges.Erp;

/// <summary>A webhook a room admin created: its name in the room, the room, who created it, and its transformation function if any.</summary>
public sealed record GenericWebhook(string Name, string RoomId, string CreatedBy, string? Transform);

/// <summary>
/// The webhooks room admins create, kept in the bridge's state store (flushed, so they survive restarts) under the
/// SHA-256 of their URL token: the token itself is shown once, to its creator, and stored nowhere.
/// </summary>
public sealed class GenericWebhookStore(BridgeStateStore state)
{
    private const string Namespace = "erp room webhooks";
    private readonly Lock _lock = new();

    /// <summary>Creates a webhook and returns its secret URL token; null when the room has one of that name.</summary>
    public string? Create(string roomId, string name, string createdBy)
    {
        lock (_lock)
        {
            if (InRoom(roomId).Any(h => h.Name == name))
                return null;
            var token = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)).TrimEnd('=').Replace('+', '-').Replace('/', '_');
            Save(KeyOf(token), new GenericWebhook(name, roomId, createdBy, null));
            return token;
        }
    }

    /// <summary>The webhook a URL token belongs to, or null.</summary>
    public GenericWebhook? Find(string token) => token.Length == 0 ? null : Read(state.Get(Namespace, KeyOf(token)));

    public IReadOnlyList<GenericWebhook> InRoom(string roomId) =>
        state.All(Namespace).Select(p => Read(p.Value)).OfType<GenericWebhook>().Where(h => h.RoomId == roomId).OrderBy(h => h.Name, StringComparer.Ordinal).ToList();

    /// <summary>Removes a room's webhook (its URL stops working); false when there is none of that name.</summary>
    public bool Remove(string roomId, string name) => Change(roomId, name, _ => null);

    /// <summary>Sets (or, with null, removes) a webhook's transformation function; false when there is none of that name.</summary>
    public bool SetTransform(string roomId, string name, string? code) => Change(roomId, name, hook => hook with { Transform = code });

    private bool Change(string roomId, string name, Func<GenericWebhook, GenericWebhook?> change)
    {
        lock (_lock)
        {
            foreach (var (key, value) in state.All(Namespace))
                if (Read(value) is { } hook && hook.RoomId == roomId && hook.Name == name)
                {
                    Save(key, change(hook));
                    return true;
                }
            return false;
        }
    }

    private void Save(string key, GenericWebhook? hook)
    {
        state.Set(Namespace, key, hook is null ? null : JsonSerializer.Serialize(hook));
        state.Flush();
    }

    private static GenericWebhook? Read(string? json) => json is null ? null : JsonSerializer.Deserialize<GenericWebhook>(json);

    private static string KeyOf(string token) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(token)));
}
