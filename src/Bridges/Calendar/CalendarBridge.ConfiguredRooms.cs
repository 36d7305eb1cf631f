using System.Net;
using Matrix.AppServices.Sdk;

namespace Matrix.Bridges.Calendar;

/// <summary>
/// The rooms the operator links in the config (<c>calendars:</c>). A room the bridge cannot join yet (not invited to an
/// invite-only room, an alias naming no room, the homeserver down) is named in a problem and waits, while the others
/// run; it is tried again every sync interval and as soon as the bridge is invited anywhere.
/// </summary>
public sealed partial class CalendarBridge
{
    /// <summary>Configured rooms (as the config names them) not linked yet, with the reason last reported.</summary>
    private readonly Dictionary<string, string> _waitingRooms = new(StringComparer.Ordinal);
    /// <summary>The room ID each configured room name stands for, once known.</summary>
    private readonly Dictionary<string, string> _configuredRoomIds = new(StringComparer.Ordinal);
    private DateTimeOffset _nextRoomRetry;

    /// <summary>
    /// Links the rooms the config names (joining them) with the config's settings, keeping what an earlier run learnt
    /// of each calendar; rooms no longer in the config are unlinked.
    /// </summary>
    public async Task ApplyConfiguredLinksAsync(CancellationToken ct)
    {
        await _lock.WaitAsync(ct);
        try
        {
            _waitingRooms.Clear();
            _configuredRoomIds.Clear();
            foreach (var configured in _config.Calendars)
                await LinkConfiguredAsync(configured, ct);
            UnlinkUnconfiguredRooms();
            _nextRoomRetry = _clock.GetUtcNow() + SyncInterval;
        }
        finally
        {
            _lock.Release();
        }
    }

    private async Task RetryWaitingRoomsAsync(CancellationToken ct)
    {
        foreach (var configured in _config.Calendars.Where(c => _waitingRooms.ContainsKey(c.Room)).ToList())
            await LinkConfiguredAsync(configured, ct);
        UnlinkUnconfiguredRooms();
    }

    private async Task LinkConfiguredAsync(CalendarBridgeConfig.LinkSection configured, CancellationToken ct)
    {
        try
        {
            var roomId = configured.Room.StartsWith('#') ? await Bot.ResolveAliasAsync(configured.Room, ct) : configured.Room;
            if (roomId is null)
            {
                Wait(configured, "the alias names no room; create the room with that alias, or correct calendars: room");
                return;
            }
            _configuredRoomIds[configured.Room] = roomId;
            await Bot.EnsureJoinedAsync(roomId, ct);
            SaveConfiguredLink(configured, roomId);
            if (_waitingRooms.Remove(configured.Room))
                Problem?.Invoke($"calendars: room {RoomName(configured)} is linked now");
        }
        catch (MatrixRequestException e)
        {
            Wait(configured, $"the bridge cannot join it ({e.Errcode}: {e.Message}); invite {Bot.UserId} to it");
        }
        catch (Exception e) when (IsHomeserverFailure(e, ct))
        {
            Wait(configured, HomeserverFailed(e));
        }
    }

    private void SaveConfiguredLink(CalendarBridgeConfig.LinkSection configured, string roomId)
    {
        var credential = configured.Username is null ? null : _vault.Protect(new NetworkCredential(configured.Username, configured.Password ?? ""));
        var existing = _store.Link(roomId);
        var sameCalendar = existing is not null && existing.Url == configured.Url;
        if (!sameCalendar && existing is not null)
            _store.Remove(roomId);
        var link = new CalendarLink
        {
            RoomId = roomId,
            Url = configured.Url,
            Credential = credential,
            LeadMinutes = configured.ReminderLeadMinutes ?? _config.Calendar.ReminderLeadMinutes,
            AgendaTime = configured.AgendaTime ?? _config.Calendar.AgendaTime,
            TimeZone = configured.TimeZone ?? _config.Calendar.TimeZone,
            FromConfig = true,
            SyncToken = sameCalendar ? existing!.SyncToken : null,
            CTag = sameCalendar ? existing!.CTag : null,
            Baselined = sameCalendar && existing!.Baselined,
            LastAgenda = existing?.LastAgenda,
        };
        var sameAgenda = existing is not null && existing.AgendaTime == link.AgendaTime && existing.TimeZone == link.TimeZone;
        _store.Save(sameAgenda ? link : WithAgendaDay(link, _clock.GetUtcNow()));
    }

    /// <summary>Unlinks rooms the operator took out of the config, once every configured room is known (an alias not resolved could be any of them).</summary>
    private void UnlinkUnconfiguredRooms()
    {
        if (_config.Calendars.Any(c => !_configuredRoomIds.ContainsKey(c.Room)))
            return;
        var configured = _configuredRoomIds.Values.ToHashSet(StringComparer.Ordinal);
        foreach (var dropped in _store.Links().Where(l => l.FromConfig && !configured.Contains(l.RoomId)))
        {
            _store.Remove(dropped.RoomId);
            _schedule.Remove(dropped.RoomId);
        }
    }

    /// <summary>Reports a configured room that waits, once per reason.</summary>
    private void Wait(CalendarBridgeConfig.LinkSection configured, string reason)
    {
        if (_waitingRooms.TryGetValue(configured.Room, out var said) && said == reason)
            return;
        _waitingRooms[configured.Room] = reason;
        Problem?.Invoke($"calendars: room {RoomName(configured)} is not linked: {reason}. The other rooms run; it is tried again every "
            + $"{_config.Calendar.SyncIntervalSeconds} s and when the bridge is invited");
    }

    private string RoomName(CalendarBridgeConfig.LinkSection configured) =>
        _configuredRoomIds.TryGetValue(configured.Room, out var roomId) && roomId != configured.Room ? $"{configured.Room} ({roomId})" : configured.Room;

    /// <summary>The bridge accepts every invite (rooms link their calendars with <c>!cal link</c>); one may let a configured room in.</summary>
    private async Task HandleInviteAsync(RoomEvent invite, CancellationToken ct)
    {
        if (invite.StateKey != Bot.UserId)
            return;
        await Bot.EnsureJoinedAsync(invite.RoomId, ct);
        await _lock.WaitAsync(ct);
        try
        {
            if (_waitingRooms.Count > 0)
                await RetryWaitingRoomsAsync(ct);
        }
        finally
        {
            _lock.Release();
        }
    }
}
