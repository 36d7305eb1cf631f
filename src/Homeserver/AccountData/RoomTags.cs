using System.Text.Json.Nodes;
using Matrix.Homeserver.Storage;
using Matrix.Homeserver.Sync;

namespace Matrix.Homeserver.AccountData;

/// <summary>A user's tags of a room: the room's <c>m.tag</c> account data, which reaches their clients through sync.</summary>
public sealed class RoomTags(Database db, AccountDataStore store, StreamPositions streams, SyncNotifier notifier)
{
    public async Task<JsonObject> LoadAsync(string userId, string roomId, CancellationToken ct)
    {
        var content = await db.ReadAsync(s => store.GetAsync(s, userId, roomId, "m.tag"), ct);
        return content is not null && JsonNode.Parse(content)?["tags"] is JsonObject tags ? (JsonObject)tags.DeepClone() : [];
    }

    public async Task UpdateAsync(string userId, string roomId, Action<JsonObject> change, CancellationToken ct)
    {
        await db.WriteAsync(async s =>
        {
            var current = await store.GetAsync(s, userId, roomId, "m.tag");
            var tags = current is not null && JsonNode.Parse(current)?["tags"] is JsonObject existing ? (JsonObject)existing.DeepClone() : [];
            change(tags);
            var content = new JsonObject { ["tags"] = tags }.ToJsonString();
            await store.SetAsync(s, userId, roomId, "m.tag", content, await streams.NextAsync(s, "account_data"));
        }, ct);
        notifier.Notify([userId]);
    }
}
