package deploy

import (
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

type kubeMeta struct {
	Name string `yaml:"name"`
}

type kubeConfigMap struct {
	Kind     string            `yaml:"kind"`
	Metadata kubeMeta          `yaml:"metadata"`
	Data     map[string]string `yaml:"data"`
}

type kubeSecret struct {
	Kind     string            `yaml:"kind"`
	Metadata kubeMeta          `yaml:"metadata"`
	Type     string            `yaml:"type"`
	Data     map[string]string `yaml:"data"`
}

type kubeService struct {
	Kind     string   `yaml:"kind"`
	Metadata kubeMeta `yaml:"metadata"`
	Spec     struct {
		ClusterIP                string `yaml:"clusterIP"`
		PublishNotReadyAddresses bool   `yaml:"publishNotReadyAddresses"`
		Ports                    []struct {
			Name string `yaml:"name"`
			Port int    `yaml:"port"`
		} `yaml:"ports"`
	} `yaml:"spec"`
}

type kubeStatefulSet struct {
	Kind     string   `yaml:"kind"`
	Metadata kubeMeta `yaml:"metadata"`
	Spec     struct {
		ServiceName string `yaml:"serviceName"`
		Replicas    int    `yaml:"replicas"`
		Template    struct {
			Spec kubePodSpec `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

type kubePodSpec struct {
	SecurityContext struct {
		RunAsNonRoot bool `yaml:"runAsNonRoot"`
		RunAsUser    int  `yaml:"runAsUser"`
		FSGroup      int  `yaml:"fsGroup"`
	} `yaml:"securityContext"`
	InitContainers []kubeContainer `yaml:"initContainers"`
	Containers     []kubeContainer `yaml:"containers"`
	Volumes        []kubeVolume    `yaml:"volumes"`
}

// kubeVolume is one pod volume: a ConfigMap or a Secret.
type kubeVolume struct {
	Name      string `yaml:"name"`
	ConfigMap *struct {
		Name string `yaml:"name"`
	} `yaml:"configMap"`
	Secret *struct {
		SecretName string `yaml:"secretName"`
	} `yaml:"secret"`
}

type kubeContainer struct {
	Name string   `yaml:"name"`
	Args []string `yaml:"args"`
	Env  []struct {
		Name      string `yaml:"name"`
		Value     string `yaml:"value"`
		ValueFrom *struct {
			FieldRef *struct {
				FieldPath string `yaml:"fieldPath"`
			} `yaml:"fieldRef"`
		} `yaml:"valueFrom"`
	} `yaml:"env"`
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	VolumeMounts []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
		SubPath   string `yaml:"subPath"`
	} `yaml:"volumeMounts"`
	ReadinessProbe *struct {
		HTTPGet struct {
			Path string `yaml:"path"`
			Port string `yaml:"port"`
		} `yaml:"httpGet"`
	} `yaml:"readinessProbe"`
	SecurityContext struct {
		AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
		ReadOnlyRootFilesystem   bool  `yaml:"readOnlyRootFilesystem"`
		RunAsUser                *int  `yaml:"runAsUser"`
		Capabilities             struct {
			Add  []string `yaml:"add"`
			Drop []string `yaml:"drop"`
		} `yaml:"capabilities"`
	} `yaml:"securityContext"`
}

// kubeVariants are the manifest folders: loopback mode and drop-in mode.
var kubeVariants = []string{"kubernetes", "kubernetes/dropin"}

// kubeClusterFile returns the cluster file held by dir's ConfigMap.
func kubeClusterFile(t *testing.T, dir string) string {
	t.Helper()
	cm := decodeOne[kubeConfigMap](t, dir+"/configmap.yaml")
	s, ok := cm.Data["cluster.yaml"]
	if cm.Kind != "ConfigMap" || !ok {
		t.Fatalf("%s/configmap.yaml: want a ConfigMap with data cluster.yaml, got kind %q, keys %v", dir, cm.Kind, cm.Data)
	}
	return s
}

func (c kubeContainer) env(name string) (value, fieldPath string, ok bool) {
	for _, e := range c.Env {
		if e.Name == name {
			if e.ValueFrom != nil && e.ValueFrom.FieldRef != nil {
				return e.Value, e.ValueFrom.FieldRef.FieldPath, true
			}
			return e.Value, "", true
		}
	}
	return "", "", false
}

func (c kubeContainer) port(name string) int {
	for _, p := range c.Ports {
		if p.Name == name {
			return p.ContainerPort
		}
	}
	return 0
}

func (c kubeContainer) mount(volume string) (path string, ok bool) {
	for _, m := range c.VolumeMounts {
		if m.Name == volume {
			return m.MountPath, true
		}
	}
	return "", false
}

// TestKubernetesManifestsAgree checks the StatefulSet, Service, ConfigMap
// and cluster file against each other: pod N is member N, peers dial the
// pods' DNS names through the headless Service, the sidecar learns its
// member from the pod name, reads the cluster file from the ConfigMap and
// the certificates from a Secret mounted as a folder (no subPath, so
// kubelet's ..data swaps are seen).
func TestKubernetesManifestsAgree(t *testing.T) {
	for _, dir := range kubeVariants {
		t.Run(dir, func(t *testing.T) { kubeManifestsAgree(t, dir) })
	}
}

func kubeManifestsAgree(t *testing.T, dir string) {
	cm := decodeOne[kubeConfigMap](t, dir+"/configmap.yaml")
	svc := decodeOne[kubeService](t, dir+"/service.yaml")
	sts := decodeOne[kubeStatefulSet](t, dir+"/statefulset.yaml")
	cfg, ps := plans(t, []byte(kubeClusterFile(t, dir)), dir+"/cluster.yaml")

	if sts.Kind != "StatefulSet" || svc.Kind != "Service" {
		t.Fatalf("kinds %q, %q: want StatefulSet, Service", sts.Kind, svc.Kind)
	}
	if sts.Spec.ServiceName != svc.Metadata.Name || svc.Spec.ClusterIP != "None" || !svc.Spec.PublishNotReadyAddresses {
		t.Errorf("service %q (clusterIP %q, publishNotReadyAddresses %v): want the StatefulSet's serviceName %q, headless, publishing unready pods",
			svc.Metadata.Name, svc.Spec.ClusterIP, svc.Spec.PublishNotReadyAddresses, sts.Spec.ServiceName)
	}
	members := cfg.Members()
	if sts.Spec.Replicas != len(members) {
		t.Errorf("replicas %d, want one per member (%d)", sts.Spec.Replicas, len(members))
	}

	pod := sts.Spec.Template.Spec
	var sidecar, member *kubeContainer
	for i := range pod.Containers {
		switch c := &pod.Containers[i]; c.Name {
		case "groupwire":
			sidecar = c
		case "member":
			member = c
		}
	}
	if sidecar == nil || member == nil {
		t.Fatalf("want containers groupwire and member, got %+v", pod.Containers)
	}
	linkPort := sidecar.port("groupwire")
	for i, m := range members {
		pod := fmt.Sprintf("%s-%d", sts.Metadata.Name, i)
		if m != pod {
			t.Errorf("member %d is %q, but the pod is %q", i, m, pod)
		}
		wantAddr := fmt.Sprintf("%s.%s:%d", pod, sts.Spec.ServiceName, linkPort)
		for _, info := range ps[m].Members {
			if info.Name == m && (info.Address != wantAddr || info.Identity != m) {
				t.Errorf("member %s: address %q identity %q, want %q and %q (the name certs init puts in its certificate)", m, info.Address, info.Identity, wantAddr, m)
			}
		}
		if ps[m].Listen != fmt.Sprintf(":%d", linkPort) {
			t.Errorf("member %s listens on %q, want :%d (the container port)", m, ps[m].Listen, linkPort)
		}
	}
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != linkPort {
		t.Errorf("service ports %+v, want %d", svc.Spec.Ports, linkPort)
	}

	// The admin listener is where the kubelet's probes go.
	admin := ps[members[0]].Admin
	if want := fmt.Sprintf("0.0.0.0:%d", sidecar.port("admin")); admin != want {
		t.Errorf("cluster file admin %q, want %q (the admin container port)", admin, want)
	}
	if sidecar.ReadinessProbe == nil || sidecar.ReadinessProbe.HTTPGet.Path != "/readyz" || sidecar.ReadinessProbe.HTTPGet.Port != "admin" {
		t.Errorf("readiness probe %+v: want GET /readyz on port admin", sidecar.ReadinessProbe)
	}

	checkContainers(t, sidecar, member)
	checkVolumes(t, pod, cm.Metadata.Name)
	if ps[members[0]].Capture != nil {
		checkDropInPod(t, pod, sidecar)
	} else if len(pod.InitContainers) != 0 || len(sidecar.SecurityContext.Capabilities.Add) != 0 {
		t.Errorf("loopback mode needs no init container and no capability, got %d init containers and %q", len(pod.InitContainers), sidecar.SecurityContext.Capabilities.Add)
	}
}

// checkDropInPod checks drop-in mode's pod: an init container installs the
// rules before the member starts, and it and the sidecar hold
// CAP_NET_ADMIN alone, as root; the member holds nothing.
func checkDropInPod(t *testing.T, pod kubePodSpec, sidecar *kubeContainer) {
	t.Helper()
	if len(pod.InitContainers) != 1 || !slices.Equal(pod.InitContainers[0].Args, []string{"capture", "--config", "/etc/groupwire/cluster.yaml"}) {
		t.Fatalf("drop-in mode: want one init container running capture --config /etc/groupwire/cluster.yaml, got %+v", pod.InitContainers)
	}
	capture := &pod.InitContainers[0]
	if _, field, ok := capture.env("GROUPWIRE_MEMBER"); !ok || field != "metadata.name" {
		t.Errorf("init container: GROUPWIRE_MEMBER must come from the pod name, got %q", field)
	}
	for _, c := range []*kubeContainer{capture, sidecar} {
		sc := c.SecurityContext
		if !slices.Equal(sc.Capabilities.Add, []string{"NET_ADMIN"}) || !slices.Equal(sc.Capabilities.Drop, []string{"ALL"}) || sc.RunAsUser == nil || *sc.RunAsUser != 0 {
			t.Errorf("container %s: want CAP_NET_ADMIN alone (drop ALL, add NET_ADMIN) as root, got add %q drop %q user %v", c.Name, sc.Capabilities.Add, sc.Capabilities.Drop, sc.RunAsUser)
		}
	}
}

// checkContainers checks what the sidecar and the member container must
// agree on: the member name, the cluster file, no subPath, hardening.
func checkContainers(t *testing.T, sidecar, member *kubeContainer) {
	t.Helper()
	for _, c := range []*kubeContainer{sidecar, member} {
		if _, field, ok := c.env("GROUPWIRE_MEMBER"); !ok || field != "metadata.name" {
			t.Errorf("container %s: GROUPWIRE_MEMBER must come from the pod name (fieldRef metadata.name), got %q", c.Name, field)
		}
		if p, _ := c.mount("cluster"); p != "/etc/groupwire" {
			t.Errorf("container %s: cluster file mounted at %q, want /etc/groupwire", c.Name, p)
		}
		for _, vm := range c.VolumeMounts {
			if vm.SubPath != "" {
				t.Errorf("container %s: volume %s mounted with subPath; kubelet never updates those", c.Name, vm.Name)
			}
		}
		if !c.SecurityContext.ReadOnlyRootFilesystem || c.SecurityContext.AllowPrivilegeEscalation == nil || *c.SecurityContext.AllowPrivilegeEscalation {
			t.Errorf("container %s: want a read-only root and no privilege escalation", c.Name)
		}
	}
	if want := []string{"run", "--config", "/etc/groupwire/cluster.yaml"}; !slices.Equal(sidecar.Args, want) {
		t.Errorf("groupwire args %q, want %q", sidecar.Args, want)
	}
	if want := []string{"member", "--config", "/etc/groupwire/cluster.yaml"}; !slices.Equal(member.Args, want) {
		t.Errorf("member args %q, want %q", member.Args, want)
	}
	if p, ok := sidecar.mount("certs"); !ok || p != "/certs" {
		t.Errorf("groupwire: certs mounted at %q, want /certs", p)
	}
	if _, ok := member.mount("certs"); ok {
		t.Error("the member container needs no certificates")
	}
}

// checkVolumes checks the pod's volumes and security context.
func checkVolumes(t *testing.T, pod kubePodSpec, configMap string) {
	t.Helper()
	volumes := map[string]kubeVolume{}
	for _, v := range pod.Volumes {
		volumes[v.Name] = v
	}
	if v, ok := volumes["cluster"]; !ok || v.ConfigMap == nil || v.ConfigMap.Name != configMap {
		t.Errorf("volume cluster: want ConfigMap %q, got %+v (present: %v)", configMap, v, ok)
	}
	if v, ok := volumes["certs"]; !ok || v.Secret == nil || v.Secret.SecretName != "groupwire-certs" {
		t.Errorf("volume certs: want Secret groupwire-certs (what make-secret.sh prints), got %+v (present: %v)", v, ok)
	}
	if sc := pod.SecurityContext; !sc.RunAsNonRoot || sc.RunAsUser != 65532 || sc.FSGroup != 65532 {
		t.Errorf("pod securityContext %+v: want non-root 65532 with fsGroup 65532 (so the sidecar reads the Secret)", sc)
	}

}

// TestKustomizationListsEveryManifest: kustomization.yaml lists every
// other manifest.
func TestKustomizationListsEveryManifest(t *testing.T) {
	for _, dir := range kubeVariants {
		k := decodeOne[struct {
			Resources []string `yaml:"resources"`
		}](t, dir+"/kustomization.yaml")
		all, _ := filepath.Glob(dir + "/*.yaml")
		for _, f := range all {
			if b := filepath.Base(f); b != "kustomization.yaml" && !slices.Contains(k.Resources, b) {
				t.Errorf("%s/kustomization.yaml does not list %s", dir, b)
			}
		}
	}
}

// TestMakeSecretFeedsTheSidecars runs make-secret.sh on a folder made by
// certs init and checks the Secret: every file but the CA's key and state,
// byte for byte; and that those files alone, mounted at /certs, satisfy
// every member's plan.
func TestMakeSecretFeedsTheSidecars(t *testing.T) {
	if _, err := exec.LookPath("base64"); err != nil {
		t.Skip("base64 not installed")
	}
	cluster := []byte(kubeClusterFile(t, "kubernetes"))
	cfg, _ := plans(t, cluster, "kubernetes/cluster.yaml")
	_, certsDir := withDevCerts(t, cluster, "/certs/", cfg.Members())

	out, err := exec.Command("sh", "kubernetes/make-secret.sh", certsDir).Output()
	if err != nil {
		t.Fatalf("make-secret.sh: %v", err)
	}
	secretFile := filepath.Join(t.TempDir(), "secret.yaml")
	if err := os.WriteFile(secretFile, out, 0o600); err != nil {
		t.Fatal(err)
	}
	sec := decodeOne[kubeSecret](t, secretFile)
	if sec.Kind != "Secret" || sec.Metadata.Name != "groupwire-certs" {
		t.Fatalf("want Secret groupwire-certs, got %s %q", sec.Kind, sec.Metadata.Name)
	}
	pems, _ := filepath.Glob(filepath.Join(certsDir, "*.pem"))
	mounted := t.TempDir()
	for _, p := range pems {
		name := filepath.Base(p)
		enc, ok := sec.Data[name]
		if name == "ca-key.pem" {
			if ok {
				t.Error("the Secret holds the CA's private key")
			}
			continue
		}
		want, _ := os.ReadFile(p)
		got, err := base64.StdEncoding.DecodeString(enc)
		if !ok || err != nil || string(got) != string(want) {
			t.Errorf("Secret key %s: present %v, decode error %v, same bytes %v", name, ok, err, string(got) == string(want))
		}
		if err := os.WriteFile(filepath.Join(mounted, name), got, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if len(sec.Data) != len(pems)-1 {
		t.Errorf("Secret keys %d, want %d (every .pem but ca-key.pem)", len(sec.Data), len(pems)-1)
	}
	data := strings.ReplaceAll(string(cluster), "/certs/", mounted+"/")
	_, ps := plans(t, []byte(data), filepath.Join(mounted, "cluster.yaml"))
	for m, p := range ps {
		if errs := materialErrors(p); len(errs) > 0 {
			t.Errorf("member %s with the Secret's files: %v", m, errs)
		}
	}
}
