namespace Matrix.Bridges.Ldap;

public enum SyncActionKind
{
    CreateUser,
    UpdateDisplayName,
    CreateRoom,
    Join,
    SetPowerLevels,
    Kick,
    DeactivateUser,
}

/// <summary>One change the reconciliation makes; <see cref="Room"/> is a room alias, <see cref="Value"/> a name or level.</summary>
public sealed record SyncAction(SyncActionKind Kind, string? UserId = null, string? Room = null, string? Value = null)
{
    public override string ToString() => Kind switch
    {
        SyncActionKind.CreateUser => $"create {UserId} ({Value})",
        SyncActionKind.UpdateDisplayName => $"rename {UserId} to {Value}",
        SyncActionKind.CreateRoom => $"create {Room} ({Value})",
        SyncActionKind.Join => $"join {UserId} to {Room}",
        SyncActionKind.SetPowerLevels => $"set power levels in {Room}: {Value}",
        SyncActionKind.Kick => $"remove {UserId} from {Room}",
        SyncActionKind.DeactivateUser => $"deactivate {UserId}",
        _ => Kind.ToString(),
    };
}

/// <summary>What a run did (or, dry, would do): its actions, counted by kind, and the errors met.</summary>
public sealed class SyncReport(bool dryRun)
{
    public bool DryRun { get; } = dryRun;
    public List<SyncAction> Actions { get; } = [];
    public List<string> Errors { get; } = [];

    public int Count(SyncActionKind kind) => Actions.Count(a => a.Kind == kind);

    public string Summary() =>
        $"{(DryRun ? "dry run: would make" : "made")} {Actions.Count} changes: created {Count(SyncActionKind.CreateUser)}, " +
        $"updated {Count(SyncActionKind.UpdateDisplayName)}, deactivated {Count(SyncActionKind.DeactivateUser)}, " +
        $"rooms created {Count(SyncActionKind.CreateRoom)}, joined {Count(SyncActionKind.Join)}, kicked {Count(SyncActionKind.Kick)}, " +
        $"power levels {Count(SyncActionKind.SetPowerLevels)}; errors {Errors.Count}";
}
