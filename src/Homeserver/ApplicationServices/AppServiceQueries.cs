using Matrix.AppServices.Registration;
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
    private static readonly TimeSpan PushQueryWait = TimeSpan.FromSeconds(5);

    /// <summary>True when an interested service created the user.</summary>
    public async Task<bool> AskForUserAsync(string userId, CancellationToken ct)
    {
        if (!IsAskable(userId))
            return false;
        foreach (var service in ServicesAskedFor(userId))
            if ((await client.SendAsync(service, HttpMethod.Get, $"/_matrix/app/v1/users/{Uri.EscapeDataString(userId)}", null, ct)).Ok
                && await db.ReadAsync(s => users.GetAsync(s, userId), ct) is not null)
                return true;
        return false;
    }

    /// <summary>
    /// Asks about the users of the services' namespaces that events about to be pushed name (senders, members) and that do
    /// not exist yet, as Synapse does before each push: an invited ghost is thus created before its bridge hears of it.
    /// </summary>
    public async Task AskForUnknownUsersAsync(IEnumerable<string> userIds, CancellationToken ct)
    {
        var askable = userIds.Distinct(StringComparer.Ordinal).Where(IsAskable).ToList();
        if (askable.Count == 0)
            return;
        var unknown = await db.ReadAsync(async s =>
        {
            var missing = new List<string>();
            foreach (var userId in askable)
                if (await users.GetAsync(s, userId) is null)
                    missing.Add(userId);
            return missing;
        }, ct);
        // Synapse waits up to a minute; a service that never answers (matrix-bot-sdk without a query.user handler) would
        // hold back all its events that long, so the push goes on after a short wait.
        using var wait = CancellationTokenSource.CreateLinkedTokenSource(ct);
        wait.CancelAfter(PushQueryWait);
        try
        {
            await Task.WhenAll(unknown.Select(userId => AskForUserAsync(userId, wait.Token)));
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
        }
    }

    private bool IsAskable(string userId) =>
        Federation.Events.EventSigning.ServerOf(userId) == config.ServerName && ServicesAskedFor(userId).Any();

    private IEnumerable<AppServiceRegistration> ServicesAskedFor(string userId) =>
        registry.All.Where(s => s.Url is not null && s.Namespaces.Users.Any(n => n.Matches(userId)));

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
