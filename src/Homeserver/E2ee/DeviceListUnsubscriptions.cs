using Matrix.Federation.Events;
using Matrix.Homeserver.Config;
using Matrix.Homeserver.Rooms;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.E2ee;

/// <summary>
/// Spec (device management): a server sends its users' device list updates only to the servers sharing a room with
/// them. When a membership change ends the last room a remote user shares with local users, their cached list stops
/// being kept current, so it is forgotten with the change (as Synapse does): the next query or update resyncs it,
/// rather than trusting a list that missed whatever happened in between.
/// </summary>
public sealed class DeviceListUnsubscriptions(DeviceListStore store, HomeserverConfig config) : IEventListener
{
    public async Task OnPersistingAsync(DbSession session, Pdu pdu, long streamOrdering, RoomSnapshot roomAfter, RoomSnapshot? roomBefore)
    {
        var left = roomBefore?.JoinedMembers.Where(member => !roomAfter.JoinedMembers.Contains(member)).ToList() ?? [];
        if (left.Count == 0)
            return;
        var remoteLeft = left.Where(member => EventSigning.ServerOf(member) != config.ServerName).ToList();
        // A local member leaving may end the sharing with every remote member of the room; a remote one, only their own.
        await store.ForgetUnsharedRemoteUsersAsync(session, pdu.RoomId, remoteLeft, localLeft: remoteLeft.Count < left.Count, config.ServerName);
    }

    public void OnPersisted(Pdu pdu, RoomSnapshot roomAfter)
    {
    }
}
