using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Matrix.AppServices.Sdk;

namespace Matrix.Bridges.Ldap;

/// <summary>
/// One directory-sync run, as a policy engine: the desired state read from the directory, the actual state read from
/// the homeserver (and the bridge's memory of the users it manages), and the minimal changes between them, applied
/// in a safe order (users, rooms, joins, power levels, removals, deactivations) or, dry, only listed. Users the bridge
/// does not manage and that are not in the directory are never touched.
/// </summary>
public sealed class Reconciler(LdapSyncConfig config, AppService service, IDirectorySource directory)
{
    /// <summary>State-store namespace: each managed user ID and the display name last given to it.</summary>
    public const string ManagedUsers = "ldap.users";
    /// <summary>State-store namespace: each managed user ID and the hash of the directory photo last set as its avatar.</summary>
    public const string Avatars = "ldap.avatars";
    private const string SyncState = "ldap.sync";
    private const string FingerprintKey = "fingerprint";

    /// <param name="Sources">What the room stands for (its groups' DNs, or a department), to name it in errors.</param>
    private sealed record RoomTarget(string Alias, string Name, bool Space, Dictionary<string, int> Members, List<string> Sources);

    /// <summary>A full run: the whole directory compared with the homeserver (on demand, and every <c>full_sync_every</c> runs).</summary>
    public Task<SyncReport> RunAsync(bool dryRun, CancellationToken ct) => RunCoreAsync(dryRun, skipIfUnchanged: false, ct);

    /// <summary>
    /// A periodic run: skipped when the directory's fingerprint equals the one of the last run that ended without errors
    /// (nothing in the directory was added, changed or deleted since), else a full run.
    /// </summary>
    public Task<SyncReport> RunIfChangedAsync(CancellationToken ct) => RunCoreAsync(dryRun: false, skipIfUnchanged: true, ct);

    private async Task<SyncReport> RunCoreAsync(bool dryRun, bool skipIfUnchanged, CancellationToken ct)
    {
        var report = new SyncReport(dryRun);
        List<SyncAction> plan;
        Dictionary<string, string> roomIds;
        string? fingerprint = null;
        try
        {
            // Taken before the read: a change made during the run makes the next fingerprint differ, so it is not missed.
            if (!dryRun)
                fingerprint = directory.Fingerprint();
            if (skipIfUnchanged && fingerprint == service.State.Get(SyncState, FingerprintKey))
                return new SyncReport(dryRun, skipped: true);
            (plan, roomIds) = await PlanAsync(directory.Read(), report.Errors, ct);
        }
        catch (Exception e) when (e is DirectoryUnavailableException or MatrixRequestException or HttpRequestException)
        {
            report.Errors.Add($"nothing changed: {e.Message}");
            return report;
        }
        if (dryRun)
        {
            report.Actions.AddRange(plan);
            return report;
        }
        foreach (var action in plan)
            try
            {
                await ApplyAsync(action, roomIds, ct);
                report.Actions.Add(action);
            }
            catch (Exception e) when (e is MatrixRequestException or HttpRequestException or KeyNotFoundException or DirectoryUnavailableException)
            {
                report.Errors.Add($"{action}: {e.Message}");
            }
        // Only a clean run lets later runs skip: after errors, the next run compares everything again.
        service.State.Set(SyncState, FingerprintKey, report.Errors.Count == 0 ? fingerprint : null);
        service.State.Flush();
        return report;
    }

    private string UserId(string localpart) => $"@{localpart}:{config.Homeserver.ServerName}";
    private string FullAlias(string alias) => $"#{alias}:{config.Homeserver.ServerName}";

    private List<RoomTarget> DesiredRooms(DirectorySnapshot directory)
    {
        var rooms = new Dictionary<string, RoomTarget>(StringComparer.Ordinal);
        foreach (var mapping in config.Groups)
        {
            var room = rooms.TryGetValue(mapping.Alias, out var known) ? known
                : rooms[mapping.Alias] = new RoomTarget(mapping.Alias, mapping.Name ?? mapping.Alias, mapping.Space, new Dictionary<string, int>(StringComparer.Ordinal), []);
            room.Sources.Add($"group {mapping.Group}");
            foreach (var person in directory.EnabledMembers(mapping.Group))
                room.Members[UserId(person.Localpart)] = Math.Max(room.Members.GetValueOrDefault(UserId(person.Localpart)), mapping.PowerLevel);
        }
        if (config.Departments.Enabled)
            foreach (var department in directory.PeopleByDn.Values.Where(p => !p.Disabled && p.Department is { Length: > 0 }).GroupBy(p => p.Department!))
            {
                var alias = config.Departments.AliasPrefix + Regex.Replace(department.Key.ToLowerInvariant(), "[^a-z0-9]+", "-").Trim('-');
                rooms[alias] = new RoomTarget(alias, department.Key, Space: true, department.ToDictionary(p => UserId(p.Localpart), _ => 0, StringComparer.Ordinal),
                    [$"department {department.Key}"]);
            }
        return rooms.Values.ToList();
    }

    /// <summary>The changes to make; a room that cannot be handled is left out and named in <paramref name="errors"/>.</summary>
    private async Task<(List<SyncAction> Plan, Dictionary<string, string> RoomIds)> PlanAsync(DirectorySnapshot directory, List<string> errors, CancellationToken ct)
    {
        var plan = new List<SyncAction>();
        var desiredUsers = directory.PeopleByDn.Values.Where(p => !p.Disabled)
            .GroupBy(p => UserId(p.Localpart)).ToDictionary(g => g.Key, g => g.First().DisplayName ?? g.First().Localpart, StringComparer.Ordinal);
        var managed = service.State.All(ManagedUsers);
        foreach (var (userId, name) in desiredUsers.OrderBy(p => p.Key, StringComparer.Ordinal))
            if (!managed.TryGetValue(userId, out var given))
                plan.Add(new SyncAction(SyncActionKind.CreateUser, userId, Value: name));
            else if (given != name)
                plan.Add(new SyncAction(SyncActionKind.UpdateDisplayName, userId, Value: name));
        if (config.Directory.Attributes.Photo is { Length: > 0 })
            PlanAvatars(directory, plan);

        bool IsOurs(string userId) => managed.ContainsKey(userId) || desiredUsers.ContainsKey(userId);
        var bot = service.Bot;
        var roomIds = new Dictionary<string, string>(StringComparer.Ordinal);
        var removals = new List<SyncAction>();
        var rooms = DesiredRooms(directory);
        var usable = new List<RoomTarget>();
        foreach (var room in rooms)
        {
            var memberships = new Dictionary<string, string>(StringComparer.Ordinal);
            var levels = new JsonObject();
            if (await bot.ResolveAliasAsync(FullAlias(room.Alias), ct) is { } roomId)
            {
                if (!await AdoptAsync(roomId, ct))
                {
                    errors.Add($"{FullAlias(room.Alias)} ({string.Join(", ", room.Sources)}): the alias names {roomId}, which the bot " +
                        $"{bot.UserId} is not in; invite it (power level 100 to manage members and levels) or free the alias");
                    continue;
                }
                roomIds[room.Alias] = roomId;
                memberships = await bot.MembershipsAsync(roomId, ct);
                levels = (await bot.GetStateAsync(roomId, "m.room.power_levels", "", ct))?["users"] as JsonObject ?? [];
            }
            else
                plan.Add(new SyncAction(room.Space ? SyncActionKind.CreateSpace : SyncActionKind.CreateRoom, Room: room.Alias, Value: room.Name));
            foreach (var member in room.Members.Keys.Order(StringComparer.Ordinal))
                if (memberships.GetValueOrDefault(member) != "join")
                    plan.Add(new SyncAction(SyncActionKind.Join, member, room.Alias));
            usable.Add(room);
            var wanted = LevelsWanted(levels, room, IsOurs);
            if (!JsonNode.DeepEquals(wanted, levels))
                plan.Add(new SyncAction(SyncActionKind.SetPowerLevels, Room: room.Alias, Value: wanted.ToJsonString()));
            foreach (var (member, membership) in memberships.OrderBy(m => m.Key, StringComparer.Ordinal))
                if (membership is "join" or "invite" && member != bot.UserId && IsOurs(member) && !room.Members.ContainsKey(member))
                    removals.Add(new SyncAction(SyncActionKind.Kick, member, room.Alias));
        }
        await PlanSpaceChildrenAsync(usable, roomIds, plan, ct);
        plan.AddRange(removals);
        if (config.Sync.DeactivateRemovedUsers)
            foreach (var userId in managed.Keys.Where(u => !desiredUsers.ContainsKey(u)).Order(StringComparer.Ordinal))
                plan.Add(new SyncAction(SyncActionKind.DeactivateUser, userId));
        return (plan, roomIds);
    }

    /// <summary>
    /// A space holds the rooms (not the spaces) whose people are all among its own: the rooms of its nested groups, or
    /// of the groups within its department. Links are only added; one made by hand stays.
    /// </summary>
    private async Task PlanSpaceChildrenAsync(List<RoomTarget> rooms, Dictionary<string, string> roomIds, List<SyncAction> plan, CancellationToken ct)
    {
        foreach (var space in rooms.Where(r => r.Space))
            foreach (var child in rooms.Where(r => !r.Space && r.Members.Count > 0 && r.Members.Keys.All(space.Members.ContainsKey)))
                if (!roomIds.TryGetValue(space.Alias, out var spaceId) || !roomIds.TryGetValue(child.Alias, out var childId)
                    || (await service.Bot.GetStateAsync(spaceId, "m.space.child", childId, ct))?["via"] is not JsonArray)
                    plan.Add(new SyncAction(SyncActionKind.LinkSpaceChild, Room: space.Alias, Value: child.Alias));
    }

    /// <summary>
    /// Whether the bot is in the room an alias names: joined before, or joining now, which accepts an invite (the bridge
    /// listens for no events, so invites to mapped rooms are taken up by the next run).
    /// </summary>
    private async Task<bool> AdoptAsync(string roomId, CancellationToken ct)
    {
        try
        {
            await service.Bot.EnsureJoinedAsync(roomId, ct);
            return true;
        }
        catch (MatrixRequestException e) when (e.Status is 403 or 404)
        {
            return false;
        }
    }

    /// <summary>Avatars follow the directory photos: set when a photo is new or changed, removed when it is gone.</summary>
    private void PlanAvatars(DirectorySnapshot directory, List<SyncAction> plan)
    {
        var given = service.State.All(Avatars);
        foreach (var person in directory.PeopleByDn.Values.Where(p => !p.Disabled).DistinctBy(p => p.Localpart).OrderBy(p => p.Localpart, StringComparer.Ordinal))
        {
            var userId = UserId(person.Localpart);
            var current = given.GetValueOrDefault(userId);
            if (person.PhotoHash is { } hash && hash != current)
                plan.Add(new SyncAction(SyncActionKind.SetAvatar, userId, Value: hash, Dn: person.Dn));
            else if (person.PhotoHash is null && current is not null)
                plan.Add(new SyncAction(SyncActionKind.RemoveAvatar, userId));
        }
    }

    /// <summary>The media type of a directory photo, from its first bytes (the attribute says JPEG; directories hold PNGs too).</summary>
    private static string ImageType(byte[] photo) => photo switch
    {
        [0xFF, 0xD8, 0xFF, ..] => "image/jpeg",
        [0x89, (byte)'P', (byte)'N', (byte)'G', ..] => "image/png",
        [(byte)'G', (byte)'I', (byte)'F', (byte)'8', ..] => "image/gif",
        [(byte)'R', (byte)'I', (byte)'F', (byte)'F', _, _, _, _, (byte)'W', (byte)'E', (byte)'B', (byte)'P', ..] => "image/webp",
        _ => "application/octet-stream",
    };

    /// <summary>The room's user power levels with ours set from the groups: others and the bot keep theirs; level 0 is left out.</summary>
    private JsonObject LevelsWanted(JsonObject actual, RoomTarget room, Func<string, bool> isOurs)
    {
        var wanted = new JsonObject();
        foreach (var (user, level) in actual)
            if (!isOurs(user) || user == service.Bot.UserId)
                wanted[user] = level?.DeepClone();
        foreach (var (user, level) in room.Members.Where(m => m.Value > 0))
            wanted[user] = level;
        return new JsonObject(wanted.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => KeyValuePair.Create(p.Key, p.Value?.DeepClone())));
    }

    /// <summary>
    /// A returning person's account was deactivated when they left, and the homeserver refuses to let the service act as
    /// it (403) until it is reactivated; asking only then costs new people nothing.
    /// </summary>
    private static async Task CreateOrReactivateAsync(Intent user, string displayName, CancellationToken ct)
    {
        try
        {
            await user.SetDisplayNameAsync(displayName, ct);
        }
        catch (MatrixRequestException e) when (e.Status == 403)
        {
            await user.ReactivateAsync(ct);
            await user.SetDisplayNameAsync(displayName, ct);
        }
    }

    private async Task ApplyAsync(SyncAction action, Dictionary<string, string> roomIds, CancellationToken ct)
    {
        var bot = service.Bot;
        switch (action.Kind)
        {
            case SyncActionKind.CreateUser:
                await CreateOrReactivateAsync(service.Intent(action.UserId!), action.Value!, ct);
                service.State.Set(ManagedUsers, action.UserId!, action.Value);
                break;
            case SyncActionKind.UpdateDisplayName:
                await service.Intent(action.UserId!).SetDisplayNameAsync(action.Value!, ct);
                service.State.Set(ManagedUsers, action.UserId!, action.Value);
                break;
            case SyncActionKind.SetAvatar:
                var photo = directory.ReadPhoto(action.Dn!);
                var user = service.Intent(action.UserId!);
                if (photo is null)
                    await user.SetAvatarUrlAsync(null, ct);
                else
                    await user.SetAvatarUrlAsync(await user.UploadAsync(photo, ImageType(photo), "avatar", ct), ct);
                service.State.Set(Avatars, action.UserId!, photo is null ? null : action.Value);
                break;
            case SyncActionKind.RemoveAvatar:
                await service.Intent(action.UserId!).SetAvatarUrlAsync(null, ct);
                service.State.Set(Avatars, action.UserId!, null);
                break;
            case SyncActionKind.CreateRoom or SyncActionKind.CreateSpace:
                // The directory decides who is in: the private_chat preset's guest access would let guests join.
                var request = new JsonObject
                {
                    ["room_alias_name"] = action.Room, ["name"] = action.Value, ["preset"] = "private_chat",
                    ["initial_state"] = new JsonArray(new JsonObject { ["type"] = "m.room.guest_access", ["state_key"] = "", ["content"] = new JsonObject { ["guest_access"] = "forbidden" } }),
                };
                if (action.Kind == SyncActionKind.CreateSpace)
                    request["creation_content"] = new JsonObject { ["type"] = "m.space" };
                roomIds[action.Room!] = await bot.CreateRoomAsync(request, ct);
                break;
            case SyncActionKind.LinkSpaceChild:
                await bot.AddToSpaceAsync(roomIds[action.Room!], roomIds[action.Value!], ct);
                break;
            case SyncActionKind.Join:
                var intent = service.Intent(action.UserId!);
                service.State.SetJoined(roomIds[action.Room!], intent.UserId, joined: false);
                await intent.EnsureJoinedAsync(roomIds[action.Room!], ct);
                break;
            case SyncActionKind.SetPowerLevels:
                var roomId = roomIds[action.Room!];
                var content = await bot.GetStateAsync(roomId, "m.room.power_levels", "", ct) ?? [];
                var users = JsonNode.Parse(action.Value!)!.AsObject();
                // A room created in this run had no levels when planned: the bot keeps its own.
                if (content["users"]?[bot.UserId] is { } botLevel && !users.ContainsKey(bot.UserId))
                    users[bot.UserId] = botLevel.DeepClone();
                content["users"] = users;
                await bot.SendStateAsync(roomId, "m.room.power_levels", "", content, ct);
                break;
            case SyncActionKind.Kick:
                await bot.KickAsync(roomIds[action.Room!], action.UserId!, "No longer in the directory group", ct);
                break;
            case SyncActionKind.DeactivateUser:
                await service.Intent(action.UserId!).DeactivateAsync(ct);
                service.State.Set(ManagedUsers, action.UserId!, null);
                service.State.Set(Avatars, action.UserId!, null);
                break;
        }
    }
}
