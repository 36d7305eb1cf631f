using System.Globalization;
using Matrix.AppServices.Registration;
using Matrix.AppServices.Sdk;

namespace Matrix.Bridges.Calendar;

/// <summary>The calendar bridge's config (<c>calendar-bridge.sample.yaml</c> documents every key).</summary>
public sealed class CalendarBridgeConfig : BridgeConfig
{
    public CalendarSection Calendar { get; set; } = new();
    /// <summary>Links made by the operator; rooms can add their own with <c>!cal link</c>.</summary>
    public List<LinkSection> Calendars { get; set; } = [];

    public sealed class CalendarSection
    {
        public int SyncIntervalSeconds { get; set; } = 60;
        public int TickSeconds { get; set; } = 15;
        public int ReminderLeadMinutes { get; set; } = 15;
        public string AgendaTime { get; set; } = "08:00";
        public string TimeZone { get; set; } = "UTC";
        public string CredentialsKeyFile { get; set; } = "";
        public int MaxBackoffSeconds { get; set; } = 1800;
    }

    public sealed class LinkSection
    {
        public string Room { get; set; } = "";
        public string Url { get; set; } = "";
        public string? Username { get; set; }
        public string? Password { get; set; }
        public int? ReminderLeadMinutes { get; set; }
        public string? AgendaTime { get; set; }
        public string? TimeZone { get; set; }
    }

    /// <summary>Only the bridge's own user: it needs the events of the rooms it is in, and acts as nobody else.</summary>
    public override RegistrationRequest RegistrationRequest() => new(AppService.Id, EffectiveUrl, AppService.SenderLocalpart, null, RateLimited: false);

    protected override bool UsesUserPrefix => false;

    public override void Validate()
    {
        base.Validate();
        if (EffectiveUrl is null)
            throw new BridgeConfigException("appservice.port (or url) is required: the bridge reads commands from the rooms");
        if (Calendar.SyncIntervalSeconds < 5)
            throw new BridgeConfigException("calendar.sync_interval_seconds must be at least 5");
        if (Calendar.TickSeconds is < 1 or > 300)
            throw new BridgeConfigException("calendar.tick_seconds must be between 1 and 300");
        if (Calendar.ReminderLeadMinutes is < 0 or > 10080)
            throw new BridgeConfigException("calendar.reminder_lead_minutes must be between 0 and 10080");
        if (Calendar.MaxBackoffSeconds < Calendar.SyncIntervalSeconds)
            throw new BridgeConfigException("calendar.max_backoff_seconds must be at least sync_interval_seconds");
        AgendaTimeOf(Calendar.AgendaTime, "calendar.agenda_time");
        ZoneOf(Calendar.TimeZone, "calendar.time_zone");
        foreach (var (link, i) in Calendars.Select((l, i) => (l, i)))
        {
            Require(link.Room, $"calendars[{i}].room");
            if (!Uri.TryCreate(link.Url, UriKind.Absolute, out var url) || url.Scheme is not ("http" or "https"))
                throw new BridgeConfigException($"calendars[{i}].url must be an http(s) URL");
            if (link.ReminderLeadMinutes is < 0 or > 10080)
                throw new BridgeConfigException($"calendars[{i}].reminder_lead_minutes must be between 0 and 10080");
            if (link.AgendaTime is not null)
                AgendaTimeOf(link.AgendaTime, $"calendars[{i}].agenda_time");
            if (link.TimeZone is not null)
                ZoneOf(link.TimeZone, $"calendars[{i}].time_zone");
        }
    }

    protected override void ResolvePaths(string folder)
    {
        Calendar.CredentialsKeyFile = Calendar.CredentialsKeyFile.Length > 0
            ? Path.GetFullPath(Calendar.CredentialsKeyFile, folder)
            : Path.Combine(AppService.DataDir, "credentials.key");
    }

    /// <summary>"HH:MM", or "off" (null) for no daily agenda.</summary>
    public static TimeOnly? AgendaTimeOf(string value, string key) =>
        value.Equals("off", StringComparison.OrdinalIgnoreCase) ? null
        : TimeOnly.TryParseExact(value, "HH:mm", CultureInfo.InvariantCulture, DateTimeStyles.None, out var time) ? time
        : throw new BridgeConfigException($"{key} must be HH:MM or off");

    public static TimeZoneInfo ZoneOf(string value, string key) =>
        ICalendar.TimeZoneResolver.System(value) ?? throw new BridgeConfigException($"{key}: '{value}' is not a known time zone");
}
