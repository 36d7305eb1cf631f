using System.Text.Json.Nodes;
using Matrix.Homeserver.Config;
using Matrix.Homeserver.Http;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.AccountData;

/// <summary>
/// Spec: Invite permission (v1.18): a local user whose <c>m.invite_permission_config</c> has <c>default_action:
/// block</c> gets no invites: sending one is 403 <c>M_INVITE_BLOCKED</c>, and stored ones are not served by /sync.
/// </summary>
public sealed class InvitePermissions(Database db, AccountDataStore accountData, HomeserverConfig config)
{
    public const string AccountDataType = "m.invite_permission_config";

    public async Task<bool> BlocksInvitesAsync(string userId, CancellationToken ct)
    {
        if (!userId.EndsWith(":" + config.ServerName, StringComparison.Ordinal))
            return false;
        var stored = await db.ReadAsync(s => accountData.GetAsync(s, userId, AccountDataStore.Global, AccountDataType), ct);
        return stored is not null && JsonNode.Parse(stored)?["default_action"] is JsonValue action
            && action.TryGetValue<string>(out var value) && value == "block";
    }

    public async Task CheckAsync(string invitee, CancellationToken ct)
    {
        if (await BlocksInvitesAsync(invitee, ct))
            throw new MatrixException(403, "M_INVITE_BLOCKED", "This user does not accept invites.");
    }
}
