BeforeAll { . (Join-Path $PSScriptRoot 'common.ps1') }

# Mirrors tests/SleapRtc.PowerShell.Tests/ModuleLoadingTests.cs. Run it under both editions on Windows:
#   pwsh -c Invoke-Pester ./tests          powershell.exe -c Invoke-Pester ./tests
Describe 'Loading the module' {
    It 'declares both editions' {
        $manifest = Test-ModuleManifest (Join-Path $script:RepoRoot 'SleapRtc.psd1')
        $manifest.CompatiblePSEditions | Should -Be 'Desktop', 'Core'
        $manifest.PowerShellVersion | Should -Be ([version] '5.1')
    }
    It 'exports the cmdlets and resolves the public types' {
        (Get-Command -Module SleapRtc).Count | Should -Be 20
        (Get-Command -Module SleapRtc).Name | Should -Contain 'Test-SleapConnection'
        (Get-Command -Module SleapRtc).Name | Should -Contain 'Submit-SleapInference'
        (Get-Command -Module SleapRtc).Name | Should -Contain 'Get-SleapSpace'
        [SleapRtc.WorkerInfo].FullName | Should -Be 'SleapRtc.WorkerInfo'
        [SleapRtc.InferenceResult].FullName | Should -Be 'SleapRtc.InferenceResult'
    }
    It 'runs the library build meant for this edition, from its private folder' {
        $null = ConvertTo-SleapSessionString -RoomId r -Token t -PeerId p
        $protocol = [AppDomain]::CurrentDomain.GetAssemblies() | Where-Object { $_.GetName().Name -eq 'SleapRtc.Protocol' }
        $framework = $protocol.GetCustomAttributes([System.Runtime.Versioning.TargetFrameworkAttribute], $false).FrameworkName
        if ($PSEdition -eq 'Desktop') {
            $protocol.Location | Should -BeLike (Join-Path $script:RepoRoot 'bin\desktop\*')
            $framework | Should -Be '.NETStandard,Version=v2.0'
        }
        else {
            $protocol.Location | Should -BeLike (Join-Path $script:RepoRoot 'bin/deps/*')
            $framework | Should -Be '.NETCoreApp,Version=v8.0'
        }
    }
    It 'serves a room on this edition: server, room, worker discovery' {
        $server = Start-SleapSignalingServer -Port 0 -ListenAddress 127.0.0.1 -DatabasePath ':memory:'
        try {
            $room = New-SleapRoom -Server $server.Url
            $room.Token.Length | Should -BeGreaterOrEqual 32
            @(Get-SleapWorker -RoomId $room.RoomId -Token $room.Token -Server $server.Url).Count | Should -Be 0
        }
        finally { $server | Stop-SleapSignalingServer -Confirm:$false }
    }
}
