@{
    # The module is built into bin/ (and en-US/) by `dotnet build`; see README.md.
    RootModule           = 'bin/SleapRtc.dll'
    ModuleVersion        = '0.1.0'
    GUID                 = '5d1f3c2e-7a4b-4f0e-9c61-2b8e4a7d9f13'
    Author               = 'SleapRtc contributors'
    CompanyName          = 'SleapRtc'
    Copyright            = '(c) SleapRtc contributors. MIT License.'
    Description          = 'Train SLEAP pose-estimation models on remote GPU workers over WebRTC: a bundled signaling server, room-based worker discovery and peer-to-peer package transfer. Wire-compatible with sleap-RTC. Requires PowerShell 7.4 or later; Windows PowerShell 5.1 is not supported yet.'

    # Our libraries target .NET 8, so PowerShell 7.4+ (Core) is the floor.
    PowerShellVersion    = '7.4'
    CompatiblePSEditions = @('Core')

    # Public object types load into the default context so [SleapRtc.WorkerInfo] and -is checks resolve.
    # Everything else (our libraries, BouncyCastle, SQLite) loads into a private load context from bin/deps.
    RequiredAssemblies   = @('bin/SleapRtc.Model.dll')
    FormatsToProcess     = @('bin/SleapRtc.format.ps1xml')
    TypesToProcess       = @('bin/SleapRtc.types.ps1xml')

    CmdletsToExport      = @(
        'ConvertFrom-SleapSessionString'
        'ConvertTo-SleapSessionString'
        'Get-SleapSignalingServer'
        'Get-SleapWorker'
        'New-SleapRoom'
        'Remove-SleapRoom'
        'Select-SleapWorker'
        'Show-SleapMonitor'
        'Start-SleapSignalingServer'
        'Start-SleapWorker'
        'Stop-SleapSignalingServer'
        'Stop-SleapWorker'
        'Submit-SleapTraining'
    )
    FunctionsToExport    = @()
    VariablesToExport    = @()
    AliasesToExport      = @()

    PrivateData          = @{
        PSData = @{
            Tags         = @('SLEAP', 'pose-estimation', 'WebRTC', 'GPU', 'training', 'PSEdition_Core', 'Linux', 'Windows', 'MacOS')
            LicenseUri   = 'https://opensource.org/licenses/MIT'
            ReleaseNotes = 'First release: signaling server, rooms, session strings, workers and training submission.'
        }
    }
}
