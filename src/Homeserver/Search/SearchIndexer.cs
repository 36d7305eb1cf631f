using System.Text.Json.Nodes;
using Matrix.Federation.Events;
using Matrix.Homeserver.Rooms;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Search;

/// <summary>Indexes the searchable text of each accepted event in its own transaction; a redaction takes its target out.</summary>
public sealed class SearchIndexer(SearchStore search) : IEventListener
{
    private const int MaxIndexedLength = 65_536;

    public async Task OnPersistingAsync(DbSession session, Pdu pdu, long streamOrdering, RoomSnapshot roomAfter, RoomSnapshot? roomBefore)
    {
        if (pdu.Redacts is { } redacted)
            await search.RemoveAsync(session, redacted);
        var entry = SearchStore.Keys.FirstOrDefault(k => k.Value == pdu.Type);
        if (entry.Key is null || pdu.Json["content"]?[entry.Key["content.".Length..]] is not JsonValue value
            || !value.TryGetValue<string>(out var text) || string.IsNullOrWhiteSpace(text))
            return;
        await search.IndexAsync(session, pdu.EventId, pdu.RoomId, pdu.Sender, entry.Key, streamOrdering,
            text.Length > MaxIndexedLength ? text[..MaxIndexedLength] : text);
    }

    public void OnPersisted(Pdu pdu, RoomSnapshot roomAfter)
    {
    }
}
