using Matrix.Federation.Events;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Rooms;

/// <summary>Something that must follow every accepted event, such as the federation sender.</summary>
public interface IEventListener
{
    /// <summary>Inside the event's transaction (the event stored at <paramref name="streamOrdering"/>): durable follow-ups (written with the event, or not at all).</summary>
    Task OnPersistingAsync(DbSession session, Pdu pdu, long streamOrdering, RoomSnapshot roomAfter, RoomSnapshot? roomBefore);

    /// <summary>After the commit: wake-ups and other in-memory follow-ups.</summary>
    void OnPersisted(Pdu pdu, RoomSnapshot roomAfter);
}
