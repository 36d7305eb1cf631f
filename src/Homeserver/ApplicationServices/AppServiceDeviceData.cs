using System.Text.Json.Nodes;
using Matrix.AppServices.Registration;
using Matrix.Federation.Events;
using Matrix.Homeserver.Rooms;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.ApplicationServices;

/// <summary>
/// Device data for encrypting bridges, for the services that opted in (<c>org.matrix.msc3202: true</c>), queued in
/// their outbox like events: to-device messages for their exclusive users' devices (MSC4203, instead of a device inbox
/// nobody syncs), users whose device lists changed or who stopped sharing a room with the service's users (MSC3202
/// <c>device_lists</c>), and the devices whose one-time or fallback keys changed (their counts are read when the
/// transaction is sent).
/// </summary>
public sealed class AppServiceDeviceData(AppServiceRegistry registry, AppServiceOutbox outbox, AppServiceSender sender, Database db, RoomStore rooms)
    : IEventListener
{
    private IEnumerable<AppServiceRegistration> OptedIn => registry.All.Where(r => r.DeviceData && r.Url is not null);

    /// <summary>The service receiving this local user's device data: one that claims the user exclusively and opted in.</summary>
    public AppServiceRegistration? ServiceFor(string userId) => OptedIn.FirstOrDefault(r => r.ClaimsUserExclusively(userId));

    /// <summary>Queues a to-device message for a service's device, in the sender's transaction; wake the service after the commit.</summary>
    public Task AddToDeviceAsync(DbSession s, AppServiceRegistration service, string userId, string deviceId, string sender, string type, JsonNode content) =>
        outbox.AddAsync(s, service.Id, AppServiceOutbox.ToDevice, new JsonObject
        {
            ["sender"] = sender, ["type"] = type, ["content"] = content.DeepClone(), ["to_user_id"] = userId, ["to_device_id"] = deviceId,
        }.ToJsonString());

    public void Wake(IEnumerable<string> serviceIds)
    {
        foreach (var id in serviceIds.Distinct())
            sender.Wake(id);
    }

    /// <summary>After a commit that changed a user's devices or cross-signing keys: the services with users sharing a room with them.</summary>
    public Task DeviceListChangedAsync(string userId, IReadOnlyCollection<string> sharingUsers, CancellationToken ct) =>
        QueueAsync(OptedIn.Where(r => sharingUsers.Any(r.IsInterestedInUser)).ToList(), AppServiceOutbox.DeviceList, DeviceListRow(userId, left: false), ct);

    /// <summary>After a commit that added, claimed or replaced one-time or fallback keys of a device.</summary>
    public Task KeyCountsChangedAsync(string userId, string deviceId, CancellationToken ct) =>
        ServiceFor(userId) is { } service
            ? QueueAsync([service], AppServiceOutbox.KeyCounts, new JsonObject { ["user_id"] = userId, ["device_id"] = deviceId }.ToJsonString(), ct)
            : Task.CompletedTask;

    private async Task QueueAsync(List<AppServiceRegistration> services, string kind, string json, CancellationToken ct)
    {
        if (services.Count == 0)
            return;
        await db.WriteAsync(async s =>
        {
            foreach (var service in services)
                await outbox.AddAsync(s, service.Id, kind, json);
        }, ct);
        Wake(services.Select(r => r.Id));
    }

    private static string DeviceListRow(string userId, bool left) => new JsonObject { ["user_id"] = userId, ["left"] = left }.ToJsonString();

    /// <summary>
    /// A membership change starts or ends sharing a room: a user joining a room with the service's users (or one of
    /// them joining, for every member) is <c>changed</c>; a user left sharing no room with them any more is <c>left</c>.
    /// </summary>
    public async Task OnPersistingAsync(DbSession session, Pdu pdu, long streamOrdering, RoomSnapshot roomAfter, RoomSnapshot? roomBefore)
    {
        if (pdu.Type != "m.room.member" || pdu.StateKey is not { } target || !OptedIn.Any())
            return;
        var joined = roomAfter.JoinedMembers;
        var joins = pdu.Membership == "join";
        foreach (var service in OptedIn)
        {
            var changedUsers = new List<string>();
            var leftUsers = new List<string>();
            var othersInRoom = joined.Where(u => !service.IsInterestedInUser(u)).ToList();
            var serviceInRoom = joined.Any(service.IsInterestedInUser);
            if (!service.IsInterestedInUser(target))
            {
                if (joins && serviceInRoom)
                    changedUsers.Add(target);
                else if (!joins && serviceInRoom && !await SharesAnyRoomAsync(session, service, target))
                    leftUsers.Add(target);
            }
            else if (joins)
                changedUsers.AddRange(othersInRoom);
            else if (!serviceInRoom)
                foreach (var member in othersInRoom)
                    if (!await SharesAnyRoomAsync(session, service, member))
                        leftUsers.Add(member);
            foreach (var user in changedUsers)
                await outbox.AddAsync(session, service.Id, AppServiceOutbox.DeviceList, DeviceListRow(user, left: false));
            foreach (var user in leftUsers)
                await outbox.AddAsync(session, service.Id, AppServiceOutbox.DeviceList, DeviceListRow(user, left: true));
            if (changedUsers.Count + leftUsers.Count > 0)
                sender.WakeAfterCommit(pdu.EventId, service.Id);
        }
    }

    public void OnPersisted(Pdu pdu, RoomSnapshot roomAfter)
    {
    }

    private async Task<bool> SharesAnyRoomAsync(DbSession s, AppServiceRegistration service, string userId)
    {
        foreach (var membership in (await rooms.MembershipsAsync(s, userId)).Where(m => m.Membership == "join"))
            if ((await rooms.JoinedMembersAsync(s, membership.RoomId)).Any(service.IsInterestedInUser))
                return true;
        return false;
    }
}
