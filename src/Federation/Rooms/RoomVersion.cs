namespace Matrix.Federation.Rooms;

public enum EventIdFormat
{
    /// <summary>v1-v2: <c>$opaque:server</c>, chosen by the sending server and carried in the PDU.</summary>
    ServerChosen,
    /// <summary>v3: the reference hash in standard unpadded base64.</summary>
    ReferenceHashBase64,
    /// <summary>v4 and later: the reference hash in URL-safe unpadded base64.</summary>
    ReferenceHashUrlSafe,
}

public enum StateResolutionAlgorithm { V1, V2, V2_1 }

/// <summary>Which keys survive redaction: each step adds to the previous one.</summary>
public enum RedactionRules
{
    /// <summary>v1-v5: keeps <c>m.room.aliases</c> content.</summary>
    V1,
    /// <summary>v6-v7: <c>m.room.aliases</c> content no longer kept.</summary>
    V6,
    /// <summary>v8: join rules keep <c>allow</c>.</summary>
    V8,
    /// <summary>v9-v10: member events keep <c>join_authorised_via_users_server</c>.</summary>
    V9,
    /// <summary>v11 and later: the MSC2176/MSC3821/MSC3989 rules.</summary>
    V11,
}

/// <summary>
/// Everything that differs between room versions, in one table, so the rest of the server asks about a capability
/// instead of comparing version strings.
/// </summary>
public sealed record RoomVersion
{
    public required string Id { get; init; }
    public bool Stable { get; init; } = true;
    public required EventIdFormat EventIdFormat { get; init; }
    public required StateResolutionAlgorithm StateResolution { get; init; }
    public required RedactionRules Redaction { get; init; }
    /// <summary>v5+: a signing key's <c>valid_until_ts</c> must cover the event.</summary>
    public bool EnforceKeyValidity { get; init; }
    /// <summary>v1-v5 has the special auth rule for <c>m.room.aliases</c>.</summary>
    public bool SpecialCaseAliasesAuth { get; init; }
    /// <summary>v6+: events must be canonical JSON (integers in range, no floats).</summary>
    public bool StrictCanonicalJson { get; init; }
    /// <summary>v6+: the <c>notifications</c> power levels are checked like <c>events</c>.</summary>
    public bool LimitNotificationsPowerLevels { get; init; }
    public bool KnockJoinRule { get; init; }
    public bool RestrictedJoinRule { get; init; }
    public bool KnockRestrictedJoinRule { get; init; }
    /// <summary>v10+: power levels must be integers (v1-v9 accept strings; v1-v5 also floats).</summary>
    public bool IntegerOnlyPowerLevels { get; init; }
    /// <summary>v11+: the creator is the create event's <c>sender</c>; <c>content.creator</c> is not required.</summary>
    public bool ImplicitRoomCreator { get; init; }
    /// <summary>v11+: <c>redacts</c> lives in <c>content</c> rather than at the top level.</summary>
    public bool RedactsInContent { get; init; }
    /// <summary>v12: the room ID is the create event's reference hash; the create event has no <c>room_id</c>.</summary>
    public bool RoomIdIsCreateEventHash { get; init; }
    /// <summary>v12: creators (sender plus <c>additional_creators</c>) have infinite power.</summary>
    public bool PrivilegedCreators { get; init; }
    /// <summary>v1-v2: an event also needs a signature from the server named in its event ID.</summary>
    public bool EventIdDomainSignature => EventIdFormat == EventIdFormat.ServerChosen;
    /// <summary>v1-v11 reference the create event in <c>auth_events</c>; v12 forbids it.</summary>
    public bool CreateEventInAuthEvents => !RoomIdIsCreateEventHash;

    public override string ToString() => Id;
}
