using System.Collections.Frozen;

namespace Matrix.Federation.Rooms;

/// <summary>The room versions this server implements (1-12) and the default for new rooms.</summary>
public static class RoomVersions
{
    public static readonly RoomVersion V1 = new()
    {
        Id = "1", EventIdFormat = EventIdFormat.ServerChosen, StateResolution = StateResolutionAlgorithm.V1,
        Redaction = RedactionRules.V1, SpecialCaseAliasesAuth = true,
    };
    public static readonly RoomVersion V2 = V1 with { Id = "2", StateResolution = StateResolutionAlgorithm.V2 };
    public static readonly RoomVersion V3 = V2 with { Id = "3", EventIdFormat = EventIdFormat.ReferenceHashBase64 };
    public static readonly RoomVersion V4 = V3 with { Id = "4", EventIdFormat = EventIdFormat.ReferenceHashUrlSafe };
    public static readonly RoomVersion V5 = V4 with { Id = "5", EnforceKeyValidity = true };
    public static readonly RoomVersion V6 = V5 with
    {
        Id = "6", Redaction = RedactionRules.V6, SpecialCaseAliasesAuth = false, StrictCanonicalJson = true,
        LimitNotificationsPowerLevels = true,
    };
    public static readonly RoomVersion V7 = V6 with { Id = "7", KnockJoinRule = true };
    public static readonly RoomVersion V8 = V7 with { Id = "8", Redaction = RedactionRules.V8, RestrictedJoinRule = true };
    public static readonly RoomVersion V9 = V8 with { Id = "9", Redaction = RedactionRules.V9 };
    public static readonly RoomVersion V10 = V9 with { Id = "10", KnockRestrictedJoinRule = true, IntegerOnlyPowerLevels = true };
    public static readonly RoomVersion V11 = V10 with
    {
        Id = "11", Redaction = RedactionRules.V11, ImplicitRoomCreator = true, RedactsInContent = true,
    };
    public static readonly RoomVersion V12 = V11 with
    {
        Id = "12", StateResolution = StateResolutionAlgorithm.V2_1, RoomIdIsCreateEventHash = true, PrivilegedCreators = true,
    };

    // 11, as Synapse: clients deployed today (Element 1.11.88, nheko 0.11.3, mautrix-python < 0.21) read a version 12
    // room's creator as power level 0, having no idea creators are privileged without an entry in power_levels.
    public static readonly RoomVersion Default = V11;

    public static readonly IReadOnlyList<RoomVersion> All = [V1, V2, V3, V4, V5, V6, V7, V8, V9, V10, V11, V12];

    private static readonly FrozenDictionary<string, RoomVersion> ById = All.ToFrozenDictionary(v => v.Id, StringComparer.Ordinal);

    public static RoomVersion? Find(string? id) => id is not null && ById.TryGetValue(id, out var version) ? version : null;
}
