namespace Matrix.Bridges.Ldap;

public enum SyncActionKind
{
    CreateUser,
    UpdateDisplayName,
    SetAvatar,
    RemoveAvatar,
    CreateRoom,
    CreateSpace,
    Join,
    SetPowerLevels,
    Kick,
    LinkSpaceChild,
    DeactivateUser,
}

/// <summary>
/// One change the reconciliation makes; <see cref="Room"/> is a room alias, <see cref="Value"/> a name, levels, a photo's
/// hash or (for a space's child) the child room's alias, <see cref="Dn"/> the directory entry a photo is read from.
/// </summary>
public sealed record SyncAction(SyncActionKind Kind, string? UserId = null, string? Room = null, string? Value = null, string? Dn = null)
{
    public override string ToString() => Kind switch
    {
        SyncActionKind.CreateUser => $"create {UserId} ({Value})",
        SyncActionKind.UpdateDisplayName => $"rename {UserId} to {Value}",
        SyncActionKind.SetAvatar => $"set the avatar of {UserId} from {Dn}",
        SyncActionKind.RemoveAvatar => $"remove the avatar of {UserId}",
        SyncActionKind.CreateRoom => $"create the room {Room} ({Value})",
        SyncActionKind.CreateSpace => $"create the space {Room} ({Value})",
        SyncActionKind.LinkSpaceChild => $"add {Value} to the space {Room}",
        SyncActionKind.Join => $"join {UserId} to {Room}",
        SyncActionKind.SetPowerLevels => $"set power levels in {Room}: {Value}",
        SyncActionKind.Kick => $"remove {UserId} from {Room}",
        SyncActionKind.DeactivateUser => $"deactivate {UserId}",
        _ => Kind.ToString(),
    };
}

/// <summary>What a run did (or, dry, would do): its actions, counted by kind, and the errors met.</summary>
public sealed class SyncReport(bool dryRun, bool skipped = false)
{
    public bool DryRun { get; } = dryRun;
    /// <summary>The directory had not changed since the last clean run, so nothing was compared.</summary>
    public bool Skipped { get; } = skipped;
    public List<SyncAction> Actions { get; } = [];
    public List<string> Errors { get; } = [];

    public int Count(SyncActionKind kind) => Actions.Count(a => a.Kind == kind);

    public string Summary() => Skipped
        ? "the directory has not changed since the last run: nothing to do"
        : $"{(DryRun ? "dry run: would make" : "made")} {Actions.Count} changes: created {Count(SyncActionKind.CreateUser)}, " +
        $"updated {Count(SyncActionKind.UpdateDisplayName)}, avatars {Count(SyncActionKind.SetAvatar) + Count(SyncActionKind.RemoveAvatar)}, deactivated {Count(SyncActionKind.DeactivateUser)}, " +
        $"rooms created {Count(SyncActionKind.CreateRoom)}, spaces created {Count(SyncActionKind.CreateSpace)}, " +
        $"space children added {Count(SyncActionKind.LinkSpaceChild)}, joined {Count(SyncActionKind.Join)}, kicked {Count(SyncActionKind.Kick)}, " +
        $"power levels {Count(SyncActionKind.SetPowerLevels)}; errors {Errors.Count}";
}
