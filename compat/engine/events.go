package engine

func (s *Server) eventRoutes() {}

// emit records a docker event that the services' own events do not
// carry (image tag/untag/pull/delete, volume and network create/destroy,
// connect/disconnect, container rename/pause/kill/health_status...): typ is
// docker's event Type ("container", "image", "volume", "network"), action
// its Action, id the object's ID (or name), attrs its Actor.Attributes
// (name, image, exitCode, ...). /events streams them with the container
// life-cycle events the bus carries.
func (s *Server) emit(typ, action, id string, attrs map[string]string) {}
