using System.Collections;
using System.Management.Automation;
using SleapRtc.Signaling.Client;

namespace SleapRtc.PowerShell.Infrastructure;

/// <summary>
/// Lets -Server name several instances of one deployment: <c>-Server a,b,c</c> (a PowerShell array) becomes the
/// comma list "a,b,c", the form the environment variable, saved credentials and session strings carry and the
/// signaling client reads (<see cref="SignalingEndpoints.ParseList"/>). A single string passes unchanged, so one URL
/// and an already comma-separated list work as before. The parameter stays a string so piped objects (whose
/// Server property is the list) bind by property name.
/// </summary>
[AttributeUsage(AttributeTargets.Property | AttributeTargets.Field)]
internal sealed class ServerListAttribute : ArgumentTransformationAttribute
{
    public override object? Transform(EngineIntrinsics engineIntrinsics, object? inputData)
    {
        var value = inputData is PSObject wrapped ? wrapped.BaseObject : inputData;
        if (value is null or string || value is not IEnumerable items) return value;
        var servers = items.Cast<object?>()
            .Select(item => (item is PSObject p ? p.BaseObject : item)?.ToString()?.Trim())
            .Where(text => !string.IsNullOrEmpty(text));
        return string.Join(SignalingEndpoints.ListSeparator.ToString(), servers);
    }
}
