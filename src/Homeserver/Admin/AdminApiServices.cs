namespace Matrix.Homeserver.Admin;

/// <summary>Registers Synapse's admin API (<c>/_synapse/admin</c>), <c>/health</c> and their services.</summary>
public static class AdminApiServices
{
    public static void AddAdminApi(this IServiceCollection services)
    {
        services.AddSingleton<AdminAuth>();
        services.AddSingleton<AdminUserStore>();
        services.AddSingleton<AdminUserService>();
        services.AddSingleton<AdminRoomStore>();
        services.AddSingleton<AdminEventReportStore>();
        services.AddSingleton<AdminMediaStore>();
        services.AddSingleton<AdminMediaModerationStore>();
        services.AddSingleton<BlockedRoomStore>();
        services.AddSingleton<RoomPurgeStore>();
        services.AddSingleton<RoomShutdown>();
        services.AddSingleton<AdminTasks>();
        services.AddSingleton<ServerNotices>();
        services.AddSingleton<HistoryPurgeStore>();
        services.AddSingleton<AdminFederationStore>();
        services.AddSingleton<Http.IEndpoints, ServerStatusEndpoints>();
        services.AddSingleton<Http.IEndpoints, AdminUserEndpoints>();
        services.AddSingleton<Http.IEndpoints, AdminDeviceEndpoints>();
        services.AddSingleton<Http.IEndpoints, AdminUserDataEndpoints>();
        services.AddSingleton<Http.IEndpoints, AdminRoomEndpoints>();
        services.AddSingleton<Http.IEndpoints, AdminRoomJoinEndpoints>();
        services.AddSingleton<Http.IEndpoints, AdminRoomDeleteEndpoints>();
        services.AddSingleton<Http.IEndpoints, AdminEventReportEndpoints>();
        services.AddSingleton<Http.IEndpoints, AdminMediaEndpoints>();
        services.AddSingleton<Http.IEndpoints, AdminMediaModerationEndpoints>();
        services.AddSingleton<Http.IEndpoints, ServerNoticeEndpoints>();
        services.AddSingleton<Http.IEndpoints, AdminHistoryPurgeEndpoints>();
        services.AddSingleton<Http.IEndpoints, AdminFederationEndpoints>();
        services.AddSingleton<Http.IEndpoints, AdminRateLimitEndpoints>();
        services.AddSingleton<Http.IEndpoints, AdminLoginAsUserEndpoints>();
        services.AddSingleton<Http.IEndpoints, AdminShadowBanEndpoints>();
        services.AddSingleton<Http.IEndpoints, AdminScheduledTaskEndpoints>();
        services.AddSingleton<Http.IEndpoints, AdminStatisticsEndpoints>();
        services.AddSingleton<Http.IEndpoints, AdminExperimentalFeatureEndpoints>();
    }
}
