using Matrix.Homeserver.Http;
using Matrix.Homeserver.Rooms;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Accounts;

/// <summary>
/// Deactivating an account, asked by its owner (<c>/account/deactivate</c>, the OAuth account page) or by an admin, as
/// Synapse does both: its 3PIDs unbound at identity servers, the account closed (<see cref="AccountService.DeactivateAsync"/>:
/// no login, tokens, devices, profile, account data, 3PIDs), optionally erased (its events shown redacted to those who
/// join later, and to other servers), and every room it is in, invited to or knocking on left.
/// </summary>
public sealed class AccountDeactivation(
    AccountService accounts, ThreepidService threepids, UserStore users, ErasedUsers erasedUsers, MembershipService memberships, RoomStore rooms,
    Database db, ILogger<AccountDeactivation> logger)
{
    /// <summary>Returns the identity servers' unbind result (<c>success</c> or <c>no-support</c>).</summary>
    public async Task<string> DeactivateAsync(string userId, bool erase, string? idServer, Func<DbSession, Task>? alsoInTransaction, CancellationToken ct)
    {
        var unbound = await threepids.UnbindAllAsync(userId, idServer, ct);
        await accounts.DeactivateAsync(userId, async s =>
        {
            if (erase)
                await users.SetErasedAsync(s, userId);
            if (alsoInTransaction is not null)
                await alsoInTransaction(s);
        }, ct);
        if (erase)
            erasedUsers.Changed();
        var inRooms = (await db.ReadAsync(s => rooms.MembershipsAsync(s, userId), ct)).Where(m => m.Membership is "join" or "invite" or "knock");
        foreach (var membership in inRooms)
        {
            try
            {
                await memberships.ChangeAsync(membership.RoomId, userId, userId, "leave", reason: null, extraContent: null, ct);
            }
            catch (MatrixException e)
            {
                logger.LogWarning("Deactivated {UserId} could not leave {RoomId}: {Error}", userId, membership.RoomId, e.Message);
            }
        }
        return unbound;
    }
}
