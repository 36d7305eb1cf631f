using Matrix.Homeserver.Accounts;
using Matrix.Homeserver.Rooms;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.ApplicationServices;

/// <summary>
/// Asks application services about users and aliases of their namespaces that do not exist yet
/// (<c>/_matrix/app/v1/users/{userId}</c>, <c>/_matrix/app/v1/rooms/{roomAlias}</c>): a service that answers 200 has
/// created them, so the caller looks again.
/// </summary>
public sealed class AppServiceQueries(
    AppServiceRegistry registry, AppServiceClient client, Database db, UserStore users, RoomStore rooms, Config.HomeserverConfig config)
{
    /// <summary>True when an interested service created the user.</summary>
    public async Task<bool> AskForUserAsync(string userId, CancellationToken ct)
    {
        if (Federation.Events.EventSigning.ServerOf(userId) != config.ServerName)
            return false;
        foreach (var service in registry.All.Where(s => s.Url is not null && s.Namespaces.Users.Any(n => n.Matches(userId))))
            if ((await client.SendAsync(service, HttpMethod.Get, $"/_matrix/app/v1/users/{Uri.EscapeDataString(userId)}", null, ct)).Ok
                && await db.ReadAsync(s => users.GetAsync(s, userId), ct) is not null)
                return true;
        return false;
    }

    /// <summary>The room of an alias an interested service created on request, or null.</summary>
    public async Task<string?> AskForAliasAsync(string alias, CancellationToken ct)
    {
        if (RoomDirectory.RoomAlias.ServerOf(alias) != config.ServerName)
            return null;
        foreach (var service in registry.All.Where(s => s.Url is not null && s.IsInterestedInAlias(alias)))
            if ((await client.SendAsync(service, HttpMethod.Get, $"/_matrix/app/v1/rooms/{Uri.EscapeDataString(alias)}", null, ct)).Ok
                && await db.ReadAsync(s => rooms.ResolveAliasAsync(s, alias), ct) is { } roomId)
                return roomId;
        return null;
    }
}
