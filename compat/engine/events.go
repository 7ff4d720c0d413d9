package engine

func (s *Server) eventRoutes() {}
